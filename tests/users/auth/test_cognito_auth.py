"""--auth cognito: SRP and password sign-in, shared tokens, refresh before expiry, errors, and the gevent loop.

Sign-ins run against moto (in-process ``mock_aws``); answers moto cannot give (wrong password, a flow the app
client does not allow, MFA, throttling) come from botocore's Stubber.
"""

from __future__ import annotations

import csv
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from moto import mock_aws

from core.errors import InputError
from tests.aws_moto import CLIENT_ID, POOL_ID, REGION, aws_env, fake_aws, moto_endpoint, run_script, seed_pool  # noqa: F401 - fixtures
from tests.conftest import probe_figures
from users.auth import srp_pow
from users.auth.cognito_auth import CognitoAccount, CognitoAuth, CognitoTokenSettings
from users.auth.cognito_client import CognitoClient, CognitoSettings, CognitoTokens, cognito_settings
from users.auth.providers import AuthFailed, Credentials


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws(fake_aws: None) -> Iterator[None]:  # noqa: F811 - the fixture imported above
    with mock_aws():
        yield


def account_for(seeded: Any, number: int = 0, clock: FakeClock | None = None, **kwargs: Any) -> CognitoAccount:
    settings = CognitoSettings(seeded.pool_id, seeded.client_id, seeded.client_secret, REGION)
    cognito = CognitoClient(settings, clock=clock or time.monotonic)
    return CognitoAccount(cognito, Credentials(*seeded.users[number]), clock=clock or time.monotonic, **kwargs)


# --- the exponentiation SRP uses --------------------------------------------------------------------------


def test_stepwise_pow_matches_the_builtin() -> None:
    rng = random.Random(7)
    modulus = int(srp_pow_module_n(), 16)
    for bits in (1, 63, 64, 65, 256, 1024, 1100):
        base, exponent = rng.getrandbits(3072) - 2**3071, rng.getrandbits(bits)
        assert srp_pow.stepwise_pow(base, exponent, modulus) == pow(base, exponent, modulus)
        assert srp_pow.srp_pow(base, exponent, modulus) == pow(base, exponent, modulus)
    assert srp_pow.srp_pow(3, 5) == 243


def srp_pow_module_n() -> str:
    from pycognito.aws_srp import N_HEX

    return N_HEX


# --- settings ----------------------------------------------------------------------------------------------


def test_settings_come_from_the_environment_and_hide_the_secret() -> None:
    env = {"COGNITO_USER_POOL_ID": "eu-west-1_Ab", "COGNITO_CLIENT_ID": "c", "COGNITO_CLIENT_SECRET": "s3cr3t"}
    settings = cognito_settings(env)
    assert (settings.pool_region, settings.client_secret) == ("eu-west-1", "s3cr3t")
    assert "s3cr3t" not in repr(settings)
    assert cognito_settings({**env, "AWS_REGION": "eu-central-1"}).pool_region == "eu-west-1"  # the pool's own
    with pytest.raises(InputError, match="COGNITO_USER_POOL_ID and COGNITO_CLIENT_ID"):
        cognito_settings({"COGNITO_USER_POOL_ID": "eu-west-1_Ab"})
    with pytest.raises(InputError, match="not a user pool id"):
        cognito_settings({**env, "COGNITO_USER_POOL_ID": "nounderscore"})


# --- against moto ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [False, True], ids=["public-client", "client-with-secret"])
def test_srp_sign_in_checks_the_tokens_and_fills_the_chosen_header(aws: None, secret: bool) -> None:
    seeded = seed_pool(users=1, secret=secret)
    reports: list[dict[str, Any]] = []
    account = account_for(seeded, report=lambda **kw: reports.append(kw))
    id_user = CognitoAuth(account)
    value = id_user.authorization()
    assert value is not None and value.startswith("Bearer ")
    claims = account.cognito.verifier.claims(value.removeprefix("Bearer "), "id")
    assert claims["cognito:username"] == account.tokens(30).username
    assert claims["aud"] == seeded.client_id

    token = CognitoTokenSettings(cognito_token="access", cognito_header="X-Api-Token", cognito_scheme="none")
    access_user = CognitoAuth(account, token)
    assert access_user.header == "X-Api-Token"
    access = access_user.authorization()
    assert access == account.tokens(30).access_token
    assert account.cognito.verifier.claims(access, "access")["client_id"] == seeded.client_id
    assert (account.sign_ins, account.refreshes) == (1, 0)
    assert [(r["request_type"], r["name"], r["exception"]) for r in reports] == [("COGNITO", "sign-in", None)]
    assert "Passw0rd" not in repr(account.tokens(30)) and "eyJ" not in repr(account.tokens(30))


def test_users_sharing_an_account_share_one_sign_in(aws: None) -> None:
    seeded = seed_pool(users=2)
    first, second = account_for(seeded, 0), account_for(seeded, 1)
    users = [CognitoAuth(first) for _ in range(8)] + [CognitoAuth(second) for _ in range(8)]
    greenlets = [gevent.spawn(user.authorization) for user in users]
    gevent.joinall(greenlets, raise_error=True)
    values = [g.value for g in greenlets]
    assert len(set(values[:8])) == 1 and len(set(values[8:])) == 1 and values[0] != values[8]
    assert (first.sign_ins, second.sign_ins) == (1, 1)


def test_tokens_are_refreshed_before_they_expire(aws: None) -> None:
    clock = FakeClock()
    seeded = seed_pool(users=1, secret=True)
    account = account_for(seeded, clock=clock)
    users = [CognitoAuth(account, refresh_margin_s=300) for _ in range(5)]
    first = account.tokens(300)
    assert first.expires_at - first.obtained_at == pytest.approx(3600, abs=2)  # moto's tokens live an hour

    clock.now += 3600 - 301  # just outside the margin: still the same tokens
    assert {user.authorization() for user in users} == {f"Bearer {first.id_token}"}
    clock.now += 2  # inside the margin: one refresh for the five users, no new SRP sign-in
    gevent.joinall([gevent.spawn(user.authorization) for user in users], raise_error=True)
    assert (account.sign_ins, account.refreshes) == (1, 1)
    renewed = account.tokens(300)
    assert renewed.refresh_token == first.refresh_token  # Cognito keeps the refresh token
    assert renewed.obtained_at == clock.now and renewed.expires_at > clock.now + 3000
    account.cognito.verifier.claims(renewed.id_token, "id")


def test_a_rejected_token_is_renewed_once_however_many_users_saw_it_rejected(aws: None) -> None:
    seeded = seed_pool(users=1)
    account = account_for(seeded)
    users = [CognitoAuth(account) for _ in range(4)]
    for user in users:
        user.authorization()
    for user in users:
        user.invalidate()
    for user in users:
        user.authorization()
    assert (account.sign_ins, account.refreshes) == (1, 1)


def test_new_password_required_is_one_clear_error(aws: None) -> None:
    seeded = seed_pool(users=1, permanent=False)  # admin-created, password never made permanent
    with pytest.raises(AuthFailed, match=r"user0@example.com must set a new password first \(NEW_PASSWORD_REQUIRED\)"):
        CognitoAuth(account_for(seeded)).authorization()


@pytest.mark.timing
def test_sign_in_runs_off_the_gevent_loop() -> None:
    figures = probe_figures("sign_in_loop_probe.py", env=aws_env(None))
    # Five SRP sign-ins are ~350 ms of CPU; on the loop they would stall it ~70 ms at a time.
    assert figures["elapsed_s"] > 0.1 and figures["ticks"] > 20, figures
    assert figures["longest_gap_s"] < 0.05, f"the loop stalled {figures['longest_gap_s'] * 1000:.0f} ms during sign-ins"


# --- the account's bookkeeping, with a scripted Cognito ----------------------------------------------------


class ScriptedCognito:
    """Stands in for CognitoClient: sign_in and refresh answer from a script."""

    def __init__(self, clock: FakeClock, refresh_fails: bool = False, sign_in_fails: bool = False) -> None:
        self.clock, self.refresh_fails, self.sign_in_fails = clock, refresh_fails, sign_in_fails
        self.calls: list[str] = []

    def _tokens(self, n: int) -> CognitoTokens:
        return CognitoTokens(f"id{n}", f"access{n}", "refresh", "u", self.clock.now, self.clock.now + 100)

    def sign_in(self, credentials: Credentials) -> CognitoTokens:
        self.calls.append("sign-in")
        if self.sign_in_fails:
            raise AuthFailed("Cognito: incorrect username or password for a@example.com")
        return self._tokens(len(self.calls))

    def refresh(self, tokens: CognitoTokens) -> CognitoTokens:
        self.calls.append("refresh")
        if self.refresh_fails:
            raise AuthFailed("Cognito: the refresh token of u was refused (Refresh Token has expired)")
        return self._tokens(len(self.calls))


def scripted_account(cognito: ScriptedCognito, reports: list[dict[str, Any]]) -> CognitoAccount:
    inline = lambda function, *args: function(*args)  # noqa: E731 - no thread needed without real work
    return CognitoAccount(
        cognito, Credentials("a@example.com", "pw"), lambda **kw: reports.append(kw), run=inline, clock=cognito.clock
    )


def test_a_refused_refresh_token_leads_to_a_new_sign_in() -> None:
    clock, reports = FakeClock(), []
    cognito = ScriptedCognito(clock, refresh_fails=True)
    account = scripted_account(cognito, reports)
    account.tokens(10)
    clock.now += 95
    assert account.tokens(10).id_token == "id3"
    assert cognito.calls == ["sign-in", "refresh", "sign-in"]
    assert [(r["name"], r["exception"] is None) for r in reports] == [
        ("sign-in", True),
        ("refresh", False),
        ("sign-in", True),
    ]


def test_a_failed_sign_in_is_not_retried_at_once() -> None:
    clock, reports = FakeClock(), []
    cognito = ScriptedCognito(clock, sign_in_fails=True)
    account = scripted_account(cognito, reports)
    for _ in range(5):
        with pytest.raises(AuthFailed, match="incorrect username or password"):
            account.tokens(10)
    assert cognito.calls == ["sign-in"] and len(reports) == 1  # one attempt, one failure in the stats
    clock.now += 31
    cognito.sign_in_fails = False
    assert account.tokens(10).id_token == "id2"


# --- a real run: Locust signs users in through Cognito (moto server), demobot checks every token ------------


def test_a_real_locust_run_signs_users_in_through_cognito(
    moto_endpoint: str,  # noqa: F811 - the fixture imported above
    demobot,
    run_locust,
    tmp_path: Path,
) -> None:
    pool = seed_pool(users=0)
    env = aws_env(moto_endpoint)
    accounts, env_file = tmp_path / "accounts.csv", tmp_path / ".env"
    # The accounts and the .env come from the setup scripts, as a user would make them.
    made = run_script(
        "aws_setup/create_test_users.py", "--pool-id", pool.pool_id, "--count", "20", "--output", str(accounts), env=env
    )
    assert made.returncode == 0, made.stderr
    setup = run_script("aws_setup/setup_aws.sh", "--env-file", str(env_file), "--yes", "--no-api", env=env)
    assert setup.returncode == 0, setup.stderr
    bot = demobot(
        "--auth", "cognito", "--cognito-pool-id", pool.pool_id, "--cognito-endpoint", moto_endpoint,
        "--cognito-client-id", pool.client_id, "--cognito-token", "id", "--ttft-ms", "5", "--token-ms", "1",
    )  # fmt: skip
    run = run_locust(
        "--host", bot.url, "--user-mix", "RestChatUser", "-u", "40", "-r", "40", "-t", "8s",
        "--accounts", str(accounts), "--think-time", "0.2-0.5",
        env={**env, "CHATSWARM_ENV_FILE": str(env_file)},  # --auth cognito comes from LOCUST_AUTH in the .env
    )  # fmt: skip
    assert run.returncode == 0, run.output
    sign_ins = run.row("COGNITO sign-in")
    # 40 users, 20 accounts: one sign-in each (the probe's before the load is counted nowhere, its tokens not shared)
    assert (sign_ins["count"], sign_ins["failures"]) == (20, 0)
    chats = sum(row["count"] for row in run.rows("POST chat:").values())
    assert chats > 100 and run.summary["totals"]["failures"] == 0
    stats = bot.stats()
    assert stats["cognito_users"] == 20 and stats["cognito_tokens_rejected"] == 0
    assert chats <= stats["cognito_tokens_accepted"] <= chats + 41  # + the probe's, + those in flight at the stop
    password = next(csv.DictReader(accounts.open()))["password"]
    assert password not in run.output
