"""core/redaction.py: every known secret becomes *** in any text, in every form a target or a page may give it."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from core import redaction
from core.redaction import MASK, redact

PASSWORD = 'pa"ss<wörd>&1'
KEY = "sk-abcdef0123456789"


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    redaction.forget_all()
    yield
    redaction.forget_all()


def test_a_secret_is_masked_in_every_form_it_may_take() -> None:
    redaction.remember(PASSWORD)
    for form in (PASSWORD, quote(PASSWORD, safe=""), json.dumps(PASSWORD)[1:-1], html.escape(PASSWORD)):
        assert redact(f"invalid password {form} for bob") == f"invalid password {MASK} for bob"
    embedded = json.dumps(PASSWORD).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    assert redact(embedded) == f'"{MASK}"'  # JSON in a page (Jinja's tojson)


def test_short_values_are_not_secrets_worth_masking() -> None:
    redaction.remember("admin", "", None)
    assert not redaction.knows_secrets()
    assert redact("admin logged in") == "admin logged in"


def test_a_secret_cut_short_at_the_end_is_masked_when_enough_of_it_shows() -> None:
    redaction.remember(KEY)
    assert redact(f"error in stream: invalid key {KEY[:10]}") == f"error in stream: invalid key {MASK}"
    assert redact(f"invalid key {KEY[:5]}") == f"invalid key {KEY[:5]}"  # under MIN_SECRET_CHARS: nothing told
    assert redact(f"{KEY[:10]} is not the end") == f"{KEY[:10]} is not the end"


def test_many_secrets_give_the_same_answers_as_few(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = [f"token-{n:06d}-{'x' * (n % 7)}" for n in range(200)]
    redaction.remember_token(*secrets)
    redaction.remember(KEY, KEY + "-longer")
    text = f"a {secrets[7]} b {KEY}-longer c {KEY} d {secrets[150]}{secrets[3]} e {KEY[:12]}"
    expected = f"a {MASK} b {MASK} c {MASK} d {MASK}{MASK} e {MASK}"
    assert redact(text) == expected  # the index, one pass
    monkeypatch.setattr(redaction, "SEARCH_EACH_UP_TO", 10_000)
    assert redact(text) == expected  # one search per secret


def test_only_the_newest_sign_in_tokens_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redaction, "MAX_SIGN_IN_TOKENS", 3)
    redaction.remember_token("token-one", "token-two", "token-three", "token-four")
    assert redact("token-one token-four") == f"token-one {MASK}"


def test_url_credentials_in_every_form() -> None:
    redaction.remember_url("http://bob:p%40ss-word@127.0.0.1:8080/api")
    basic = base64.b64encode(b"bob:p@ss-word").decode()
    assert redact(f"Basic {basic}; pw p@ss-word; raw p%40ss-word") == f"Basic {MASK}; pw {MASK}; raw {MASK}"
    assert redact("bob:p@ss-word") == MASK
    assert redact("see ws://alice:other-pw@host/chat") == f"see ws://{MASK}@host/chat"  # any URL, known or not
    assert redact("mail planted@example.com") == "mail planted@example.com"


def test_variables_and_headers_named_like_secrets() -> None:
    redaction.remember_environment(
        {"CHATBOT_API_KEY": KEY, "LOGIN_PASSWORD": "hunter22", "CHATBOT_URL": "http://u:url-secret@h", "HOME": "/root"}
    )
    redaction.remember_header("X-Api-Key", " header-key-1 ")
    redaction.remember_header("Authorization", "Bearer bearer-token-1")
    redaction.remember_header("Accept", "text/event-stream")
    text = f"{KEY} hunter22 url-secret /root header-key-1 bearer-token-1 text/event-stream"
    assert redact(text) == f"{MASK} {MASK} {MASK} /root {MASK} {MASK} text/event-stream"


def test_an_exception_is_masked_in_place() -> None:
    redaction.remember(KEY)
    error = ValueError(f"invalid key {KEY}", 401)
    same = error
    redaction.redact_exception(error)
    assert error is same and error.args == (f"invalid key {MASK}", 401)
    assert KEY not in repr(error)
