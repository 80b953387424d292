"""The secret values this process knows, and the one function that masks them in any text that leaves it.

Secrets are remembered where they are born: secret options (``is_secret``) and variables named like secrets at
the start, the password in the target's URL, every account's password, every token a sign-in returns, and
handshake headers that carry credentials. ``redact`` then turns each of them into ``***`` wherever text leaves
the process (failure names, log lines, summary.json, the web UI; see plugins/output/redaction.py), even when
the target echoes one back in an error.

Values shorter than MIN_SECRET_CHARS are not remembered: masking ``test`` or ``admin`` would blank ordinary
words in every line. A secret cut short at the end of a text (a failure name quotes the first 80 characters of
an error) is masked too when at least MIN_SECRET_CHARS of it show. Free of Locust imports: scripts may use it.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
"""What a secret becomes in every output."""

MIN_SECRET_CHARS = 6
"""Shorter values are not secrets worth masking: they would blank ordinary words."""

MAX_SIGN_IN_TOKENS = 10_000
"""Tokens from sign-ins kept (the newest): a long run signs in again and again, and old tokens have expired."""

SEARCH_EACH_UP_TO = 32
"""Up to this many values, each is searched for in the text; beyond, the text is scanned once with an index."""

SECRET_VARIABLE = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|_KEY|CREDENTIALS?)$", re.IGNORECASE)
"""Environment variables whose values are secrets: LOGIN_PASSWORD, CHATBOT_API_KEY, COGNITO_CLIENT_SECRET …"""

SECRET_HEADER = re.compile(r"authorization|cookie|key|token|secret|password|auth", re.IGNORECASE)
"""Header names whose values are credentials (Authorization, X-Api-Key, Cookie …)."""

URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"<>]+@")
"""The user and password part of any URL (``http://bob:pw@host``)."""


class SecretBook:
    """The secrets of this process, and their index. Threads may add to it (Cognito signs in on one), so a change
    is one atomic step (a list appended to, a tuple replaced). Adding a secret costs the same however many are
    known (thousands of accounts and tokens, often sharing their first characters)."""

    def __init__(self) -> None:
        self.lasting: dict[str, None] = {}
        """Secrets for the whole run (options, variables, accounts, the URL's password), in every form."""
        self.tokens: dict[str, None] = {}
        """Sign-in tokens, oldest first, at most MAX_SIGN_IN_TOKENS."""
        self.index: dict[str, list[str]] = {}
        """Every form by its first MIN_SECRET_CHARS characters."""
        self.few: tuple[str, ...] = ()
        """Every form, longest first, while there are at most SEARCH_EACH_UP_TO (else empty: the index serves)."""

    def add(self, kept: dict[str, None], values: Iterable[str | None]) -> None:
        fresh = [form for value in values if value for form in _forms(str(value)) if form not in kept]
        for form in fresh:
            if form not in self.lasting and form not in self.tokens:
                self.index.setdefault(form[:MIN_SECRET_CHARS], []).append(form)
            kept[form] = None
        if fresh:
            self._count_changed()

    def drop_oldest_token(self) -> None:
        form = next(iter(self.tokens))
        del self.tokens[form]
        if form not in self.lasting:
            self.index[form[:MIN_SECRET_CHARS]].remove(form)
        self._count_changed()

    def forget_all(self) -> None:
        self.lasting.clear()
        self.tokens.clear()
        self.index.clear()
        self._count_changed()

    def _count_changed(self) -> None:
        if len(self.lasting) + len(self.tokens) > SEARCH_EACH_UP_TO:
            self.few = ()
        else:
            self.few = tuple(sorted({*self.lasting.copy(), *self.tokens.copy()}, key=len, reverse=True))


_book = SecretBook()
"""This process's secrets: one book, since log lines and failure names of every Environment leave by it."""


def remember(*values: str | None) -> None:
    """Remember secrets for the rest of the run (a password, an API key, a secret option's value)."""
    _book.add(_book.lasting, values)


def remember_token(*values: str | None) -> None:
    """Remember tokens from a sign-in; only the newest MAX_SIGN_IN_TOKENS are kept."""
    _book.add(_book.tokens, values)
    while len(_book.tokens) > MAX_SIGN_IN_TOKENS:
        try:
            _book.drop_oldest_token()
        except (KeyError, RuntimeError, StopIteration):  # another thread changed it meanwhile: try again
            continue


def remember_url(url: str | None) -> None:
    """Remember the credentials in a URL (``http://bob:pw@host``): ``bob:pw``, the password and Basic's form."""
    netloc = urlsplit(url or "").netloc
    if "@" not in netloc:
        return
    userinfo = netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    plain = f"{unquote(user)}:{unquote(password)}"
    remember(userinfo, plain, password, unquote(password), base64.b64encode(plain.encode()).decode())


def remember_header(name: str, value: str) -> None:
    """Remember a header's value if its name says it carries credentials (``Authorization: Bearer …``)."""
    if SECRET_HEADER.search(name):
        value = value.strip()
        remember(value, value.rpartition(" ")[2])


def remember_environment(variables: Mapping[str, str]) -> None:
    """Remember the values of variables named like secrets, and credentials in any URL among the values."""
    for name, value in variables.items():
        if SECRET_VARIABLE.search(name):
            remember(value)
        elif "://" in value and "@" in value:
            remember_url(value)


def knows_secrets() -> bool:
    """Whether any secret is known (redact has work to do beyond URL credentials)."""
    return bool(_book.lasting or _book.tokens)


def forget_all() -> None:
    """Forget every secret (for tests)."""
    _book.forget_all()


def redact(text: str) -> str:
    """``text`` with every known secret, and the credentials of any URL, shown as ``***``."""
    if not text:
        return text
    if "@" in text:
        text = URL_CREDENTIALS.sub(rf"\1{MASK}@", text)
    if _book.few:
        return _search_each(text, _book.few)
    if _book.index:
        return _scan(text, _book.index)
    return text


def redact_exception(error: BaseException) -> None:
    """Mask secrets in an exception's arguments in place, so its str() and repr() (a failure's name) hold none."""
    args = tuple(_redacted_argument(argument) for argument in error.args)
    if args != error.args:
        error.args = args


def _redacted_argument(argument: object) -> object:
    if isinstance(argument, str):
        return redact(argument)
    try:
        text = str(argument)
    except Exception:  # an argument that cannot show itself shows no secret either
        return argument
    cleaned = redact(text)
    return argument if cleaned == text else cleaned


def _forms(value: str) -> set[str]:
    """A secret as text may carry it: plain, in a URL, in JSON (ASCII), in HTML, in a page's embedded JSON."""
    if len(value) < MIN_SECRET_CHARS:
        return set()
    in_json = json.dumps(value)[1:-1]
    embedded = in_json.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")
    return {value, quote(value, safe=""), in_json, html.escape(value), embedded}


def _search_each(text: str, values: tuple[str, ...]) -> str:
    """Few secrets: replace each where it occurs (fast searches in C), then a secret cut off at the end."""
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    for value in values:
        start = max(0, len(text) - len(value) + 1)
        at = text.find(value[:MIN_SECRET_CHARS], start)
        while at >= 0:
            if value.startswith(text[at:]):
                return text[:at] + MASK
            at = text.find(value[:MIN_SECRET_CHARS], at + 1)
    return text


def _scan(text: str, index: dict[str, list[str]]) -> str:
    """Many secrets (thousands of accounts and tokens): one pass over the text, looking up each position."""
    pieces: list[str] = []
    start = at = 0
    end = len(text)
    while at <= end - MIN_SECRET_CHARS:
        found = _longest_at(text, at, index.get(text[at : at + MIN_SECRET_CHARS], ()))
        if found:
            pieces += [text[start:at], MASK]
            at = start = min(at + found, end)
        else:
            at += 1
    pieces.append(text[start:])
    return "".join(pieces)


def _longest_at(text: str, at: int, candidates: list[str] | tuple[()]) -> int:
    """The length of the longest candidate found at ``at`` (or cut off by the text's end there), else 0."""
    longest, left = 0, len(text) - at
    for value in candidates:
        size = len(value)
        if size > longest and (text.startswith(value, at) if size <= left else value.startswith(text[at:])):
            longest = size
    return longest
