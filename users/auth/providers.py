"""Token providers: how a simulated user gets the Authorization header its chatbot wants.

One interface, several kinds (``--auth``): ``none``, ``login`` (email and password posted to a
login endpoint, the bearer token reused until shortly before it expires, and fetched again when the
server rejects it), and ``cognito`` (Amazon Cognito user pools, in ``users.auth.cognito_auth``). A login
provider never talks HTTP itself: the user hands it a login function that goes through the user's own
client, so every login shows up in Locust's stats like any other request.
"""

from __future__ import annotations

import csv
import io
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import InputError
from core.input_files import MAX_DATA_FILE_MB, MB, read_text_file
from core.redaction import remember, remember_token

AUTH_KINDS = ("none", "login", "cognito")
"""The values --auth accepts."""

DEFAULT_REFRESH_MARGIN_S = 30.0
"""Log in again this long before the token expires (at most half of the token's lifetime)."""


class AuthFailed(Exception):
    """A login attempt that did not yield a token; the message is one line and holds no secret."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """One account; the password never shows in a repr, a log line or a report."""

    email: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        remember(self.password)  # masked in every output, even when the target echoes it


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and when it stops being valid, on the clock of the provider that fetched it."""

    value: str = field(repr=False)
    obtained_at: float
    expires_at: float | None = None

    def needs_refresh(self, now: float, margin_s: float) -> bool:
        """True when the token has expired or will within the margin (capped at half its lifetime)."""
        if self.expires_at is None:
            return False
        margin = min(margin_s, (self.expires_at - self.obtained_at) / 2)
        return now >= self.expires_at - margin


LoginFunction = Callable[[Credentials], Token]
"""Performs one login and returns the token, or raises AuthFailed."""


class TokenProvider(ABC):
    """Gives the value of the Authorization header, logging in when it has to."""

    __slots__ = ()  # every user holds one; no instance dict (the subclasses that list theirs have none either)

    header: str = "Authorization"
    """The request header the value goes in."""

    @abstractmethod
    def authorization(self) -> str | None:
        """The header value to send, or None to send no Authorization header."""

    def invalidate(self) -> None:  # noqa: B027 - providers without tokens have nothing to forget
        """The server rejected the current token: fetch a new one on the next call."""

    @property
    def can_refresh(self) -> bool:
        """Whether a rejected token can be replaced by logging in again."""
        return False


class NoAuth(TokenProvider):
    """For chatbots that need no authentication."""

    __slots__ = ()

    def authorization(self) -> str | None:
        return None


class LoginAuth(TokenProvider):
    """Logs in with one account, reuses the token, and logs in again before expiry or after a rejection."""

    __slots__ = ("_clock", "_login", "_token", "credentials", "logins", "refresh_margin_s", "scheme")

    def __init__(
        self,
        login: LoginFunction,
        credentials: Credentials,
        refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
        scheme: str = "Bearer",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._login = login
        self.credentials = credentials
        self.refresh_margin_s = refresh_margin_s
        self.scheme = scheme
        self._clock = clock
        self._token: Token | None = None
        self.logins = 0
        """How many times this provider logged in."""

    def authorization(self) -> str | None:
        token = self._token
        if token is None or token.needs_refresh(self._clock(), self.refresh_margin_s):
            token = self._token = self._login(self.credentials)
            self.logins += 1
        return f"{self.scheme} {token.value}" if self.scheme else token.value

    def invalidate(self) -> None:
        self._token = None

    @property
    def can_refresh(self) -> bool:
        return True


def token_from_response(
    body: Any,
    now: float,
    token_field: str = "access_token",
    expires_field: str = "expires_in",
) -> Token:
    """Read the token and its lifetime (seconds) from a login endpoint's JSON answer."""
    if not isinstance(body, Mapping):
        raise AuthFailed("login answer is not a JSON object")
    value = body.get(token_field) or body.get("token")
    if not isinstance(value, str) or not value:
        raise AuthFailed(f"login answer has no {token_field!r}")
    remember_token(value)  # masked in every output, even when the target echoes it
    lifetime = body.get(expires_field)
    expires_at = now + float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else None
    return Token(value, obtained_at=now, expires_at=expires_at)


def credentials_from_env(env: Mapping[str, str] = os.environ, auth: str = "login") -> Credentials:
    """The single account in LOGIN_EMAIL and LOGIN_PASSWORD (from .env or the environment)."""
    email, password = env.get("LOGIN_EMAIL", ""), env.get("LOGIN_PASSWORD", "")
    if not email or not password:
        raise InputError(
            f"--auth {auth} needs LOGIN_EMAIL and LOGIN_PASSWORD (in .env or the environment) or --accounts FILE"
        )
    return Credentials(email, password)


def load_accounts(location: str, max_bytes: int = MAX_DATA_FILE_MB * MB, limit_option: str = "") -> list[Credentials]:
    """Read an accounts CSV with a header row naming ``email`` (or ``username``) and ``password`` columns.

    A file over ``max_bytes``, binary or not UTF-8 is refused before it is parsed, and so is a field longer than
    the csv module takes (128 KB: no email or password is that long).
    """
    text = read_text_file(location, "--accounts", max_bytes, limit_option)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = set(reader.fieldnames or ())
        user_column = "email" if "email" in columns else "username"
        if user_column not in columns or "password" not in columns:
            raise InputError(f"{location}: the accounts CSV needs a header row with email (or username) and password")
        accounts = [_account(location, reader.line_num, row, user_column) for row in reader]
    except csv.Error as error:
        reason = "a field over 128 KB" if "field limit" in str(error) else f"not CSV ({error})"
        raise InputError(f"--accounts: {location}:{reader.line_num + 1}: {reason}; give email,password rows") from None
    if not accounts:
        raise InputError(f"--accounts: {location} lists no accounts")
    return accounts


def _account(location: str, line: int, row: dict[str, str | None], user_column: str) -> Credentials:
    email, password = (row.get(user_column) or "").strip(), row.get("password") or ""
    if not email or not password:
        raise InputError(f"{location}:{line}: an account needs both {user_column} and password")
    return Credentials(email, password)
