"""Token providers: login reuse, refresh before expiry, rejection, and where accounts come from."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError
from users.auth.providers import (
    AuthFailed,
    Credentials,
    LoginAuth,
    NoAuth,
    Token,
    credentials_from_env,
    load_accounts,
    token_from_response,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_login(clock: FakeClock, lifetime_s: float | None):
    calls: list[Credentials] = []

    def login(credentials: Credentials) -> Token:
        calls.append(credentials)
        expires = clock.now + lifetime_s if lifetime_s else None
        return Token(f"token-{len(calls)}", obtained_at=clock.now, expires_at=expires)

    return login, calls


def test_no_auth_sends_nothing() -> None:
    assert NoAuth().authorization() is None
    assert not NoAuth().can_refresh


def test_token_is_reused_until_the_refresh_margin() -> None:
    clock = FakeClock()
    login, _ = counting_login(clock, lifetime_s=300)
    provider = LoginAuth(login, Credentials("a@example.com", "pw"), refresh_margin_s=30, clock=clock)
    assert provider.authorization() == "Bearer token-1"
    clock.now += 269
    assert provider.authorization() == "Bearer token-1"
    clock.now += 1  # 30 s before expiry
    assert provider.authorization() == "Bearer token-2"
    assert provider.logins == 2


def test_margin_is_capped_at_half_a_short_lifetime() -> None:
    clock = FakeClock()
    login, calls = counting_login(clock, lifetime_s=4)
    provider = LoginAuth(login, Credentials("a@example.com", "pw"), refresh_margin_s=30, clock=clock)
    provider.authorization()
    clock.now += 1.9
    provider.authorization()
    clock.now += 0.2
    provider.authorization()
    assert len(calls) == 2


def test_rejected_token_is_fetched_again_and_tokens_without_expiry_are_kept() -> None:
    clock = FakeClock()
    login, _ = counting_login(clock, lifetime_s=None)
    provider = LoginAuth(login, Credentials("a@example.com", "pw"), clock=clock, scheme="")
    assert provider.authorization() == "token-1"
    clock.now += 10**6
    assert provider.authorization() == "token-1"
    provider.invalidate()
    assert provider.authorization() == "token-2"
    assert provider.can_refresh


def test_token_from_response() -> None:
    token = token_from_response({"access_token": "abc", "expires_in": 60}, now=5.0)
    assert (token.value, token.obtained_at, token.expires_at) == ("abc", 5.0, 65.0)
    assert token_from_response({"token": "xyz"}, now=0).expires_at is None
    assert "abc" not in repr(token)
    for body in ([], {"expires_in": 5}, {"access_token": ""}):
        with pytest.raises(AuthFailed):
            token_from_response(body, now=0)


def test_credentials_from_env_and_secrets_stay_out_of_repr() -> None:
    creds = credentials_from_env({"LOGIN_EMAIL": "me@example.com", "LOGIN_PASSWORD": "hunter2"})
    assert creds.email == "me@example.com"
    assert "hunter2" not in repr(creds)
    with pytest.raises(InputError, match="LOGIN_EMAIL and LOGIN_PASSWORD"):
        credentials_from_env({"LOGIN_EMAIL": "me@example.com"})


def test_accounts_csv(tmp_path: Path) -> None:
    good = tmp_path / "accounts.csv"
    good.write_text("email,password,team\na@example.com,pw1,x\nb@example.com,pw2,y\n")
    assert [a.email for a in load_accounts(str(good))] == ["a@example.com", "b@example.com"]
    usernames = tmp_path / "usernames.csv"
    usernames.write_text("username,password\nloadtest1,pw\n")
    assert load_accounts(str(usernames))[0].email == "loadtest1"

    cases = {
        "nohdr.csv": ("a@example.com,pw\n", "header row"),
        "blank.csv": ("email,password\na@example.com,\n", r"blank\.csv:2: an account needs"),
        "empty.csv": ("email,password\n", "lists no accounts"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match=message):
            load_accounts(str(tmp_path / name))
    with pytest.raises(InputError, match="cannot read"):
        load_accounts(str(tmp_path / "missing.csv"))
