"""What every HTTP chat user shares: prompts, think time, seeding, sign-in and request timeouts."""

from __future__ import annotations

import argparse
import itertools
import os
import random
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import gevent
from locust import FastHttpUser

from core.errors import InputError
from core.options import add_option, option, parse_seconds_range, require_path, require_positive
from core.tls import ConnectionSettings, context_factory, insecure_option
from users.auth import cognito_auth
from users.auth.providers import (
    AUTH_KINDS,
    DEFAULT_REFRESH_MARGIN_S,
    AuthFailed,
    Credentials,
    LoginAuth,
    NoAuth,
    Token,
    TokenProvider,
    credentials_from_env,
    load_accounts,
    token_from_response,
)
from users.common import pacing
from users.common.http_failures import response_failure
from users.common.prompts import PromptSource, prompt_source

_user_numbers = itertools.count()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options every chat user reads."""
    add_option(
        parser,
        "--prompts",
        default="",
        help='JSONL file or folder of them, one {"prompt": ...} per line; empty = the built-in sample questions',
    )
    add_option(
        parser,
        "--prompt-weights",
        default="",
        help="How often each prompt category is asked, e.g. simple=3,common=5,complex=2",
    )
    add_option(parser, "--max-samples", type=int, default=0, help="Use at most this many prompts (0 = all)")
    add_option(parser, "--think-time", default="1-3", help="Seconds a user waits between questions: 0, 2 or 1-3")
    add_option(parser, "--seed", default="", help="Seed for prompt picking and think times (empty = random)")
    add_option(parser, "--auth", default="none", choices=AUTH_KINDS, help="How users sign in")
    add_option(parser, "--login-path", default="/api/auth/login", help="Login endpoint for --auth login")
    add_option(parser, "--login-user-field", default="email", help="JSON field that carries the account name")
    add_option(
        parser, "--accounts", default="", help="CSV of accounts (email,password), one per user; else LOGIN_EMAIL"
    )
    add_option(
        parser,
        "--token-refresh-margin",
        type=float,
        default=DEFAULT_REFRESH_MARGIN_S,
        help="Log in again this many seconds before a token expires",
    )
    cognito_auth.add_arguments(parser)
    pacing.add_arguments(parser)


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """The chat options of a run, parsed and checked."""

    prompts: PromptSource
    think_time: tuple[float, float]
    seed: int | None
    auth: str
    login_path: str
    login_user_field: str
    accounts: tuple[Credentials, ...]
    refresh_margin_s: float
    request_timeout_s: float


def chat_settings(options: Any) -> ChatSettings:
    """Parse and check the chat options; raises InputError naming the first bad one."""
    seed_text = str(option(options, "seed", "")).strip()
    try:
        seed = int(seed_text) if seed_text else None
    except ValueError:
        raise InputError(f"--seed: {seed_text!r} is not a whole number") from None
    auth = option(options, "auth", "none")
    if auth not in AUTH_KINDS:
        raise InputError(f"--auth: unknown kind {auth!r}; choose one of {', '.join(AUTH_KINDS)}")
    max_samples = int(option(options, "max_samples", 0))
    if max_samples < 0:
        raise InputError(f"--max-samples: must be 0 (all) or more, got {max_samples}")
    return ChatSettings(
        prompts=prompt_source(
            option(options, "prompts", "") or None, option(options, "prompt_weights", ""), max_samples, seed
        ),
        think_time=parse_seconds_range(option(options, "think_time", "1-3"), "--think-time"),
        seed=seed,
        auth=auth,
        login_path=require_path(option(options, "login_path", "/api/auth/login"), "--login-path", allow_url=True),
        login_user_field=option(options, "login_user_field", "email"),
        accounts=_accounts(auth, option(options, "accounts", "")),
        refresh_margin_s=require_positive(
            float(option(options, "token_refresh_margin", DEFAULT_REFRESH_MARGIN_S)), "--token-refresh-margin", True
        ),
        request_timeout_s=ConnectionSettings.read(options).request_timeout,
    )


def check_options(options: Any) -> None:
    """Raise InputError for a bad chat option (loading the prompts and accounts on the way)."""
    chat_settings(options)
    cognito_auth.check_options(options)
    pacing.check_options(options)


def _accounts(auth: str, accounts_file: str) -> tuple[Credentials, ...]:
    if auth not in ("login", "cognito"):
        return ()
    if accounts_file:
        return _cached_accounts(accounts_file)
    return (credentials_from_env(os.environ, auth),)


@lru_cache(maxsize=4)
def _cached_accounts(accounts_file: str) -> tuple[Credentials, ...]:
    return tuple(load_accounts(accounts_file))


class LatenessAwareEvent:
    """Locust's request event for one user, adding the current exchange's lateness to response times."""

    def __init__(self, event: Any) -> None:
        self.event = event
        self.lateness_ms = 0.0

    def fire(self, **kwargs: Any) -> None:
        if self.lateness_ms and kwargs.get("response_time") is not None:
            kwargs["response_time"] += self.lateness_ms
        self.event.fire(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.event, name)  # measure(), add_listener() … behave as on the real event


class ChatUser(FastHttpUser):
    """Base of the HTTP chat users: a FastHttp client, a prompt picker, think time and a token provider."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        self.settings = chat_settings(environment.parsed_options)
        self.network_timeout = self.connection_timeout = self.settings.request_timeout_s
        # FastHttpUser skips certificate checks unless told otherwise; ours check them unless --insecure.
        self.insecure = insecure_option(environment.parsed_options)
        self.ssl_context_factory = context_factory(self.insecure)
        super().__init__(environment)
        runner = environment.runner
        self.user_number = next(_user_numbers) + 100_000 * (getattr(runner, "worker_index", 0) or 0)
        """This user's number in its process (offset per worker), used to pick its account."""
        seed = self.settings.seed
        self.rng = random.Random(seed * 1_000_003 + self.user_number) if seed is not None else random.Random()
        self.auth = self._token_provider()
        self.scheduled_start: float | None = None
        self.request_event = LatenessAwareEvent(environment.events.request)
        """Where this user's exchanges are reported; adds a paced request's lateness to its times."""
        self.client.request_event = self.request_event

    def on_start(self) -> None:
        if pacing.current(self.environment) is not None:
            gevent.sleep(self.wait_time())  # with an arrival rate even the first request waits for its turn

    def wait_time(self) -> float:
        pacer = pacing.current(self.environment)
        if pacer is not None:
            now = time.monotonic()
            self.scheduled_start = pacer.claim(now)
            return max(0.0, self.scheduled_start - now)
        self.scheduled_start = None
        low, high = self.settings.think_time
        return low if low == high else self.rng.uniform(low, high)

    def begin_exchange(self) -> None:
        """Call at the start of each task: with an arrival rate, notes how late it starts.

        The lateness is then added to every response time this exchange reports, so latency counts from
        the scheduled start.
        """
        pacer = pacing.current(self.environment)
        scheduled, self.scheduled_start = self.scheduled_start, None
        lateness_s = pacer.started(scheduled, time.monotonic()) if pacer and scheduled is not None else 0.0
        self.request_event.lateness_ms = lateness_s * 1000

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate the next request; logs in first when the token is missing or expiring."""
        value = self.auth.authorization()
        return {self.auth.header: value} if value else {}

    def _token_provider(self) -> TokenProvider:
        if self.settings.auth in ("login", "cognito"):
            accounts = self.settings.accounts
            account = accounts[self.user_number % len(accounts)]
            if self.settings.auth == "cognito":
                return cognito_auth.cognito_provider(
                    self.environment.parsed_options,
                    account,
                    self.settings.refresh_margin_s,
                    self.environment.events.request.fire,
                )
            return LoginAuth(self._login, account, self.settings.refresh_margin_s)
        return NoAuth()

    def _login(self, credentials: Credentials) -> Token:
        body = {self.settings.login_user_field: credentials.email, "password": credentials.password}
        with self.client.post(self.settings.login_path, json=body, name="login", catch_response=True) as response:
            failure = response_failure(response)
            try:
                if failure:
                    raise AuthFailed(f"login failed: {failure}")
                return token_from_response(response.json(), time.monotonic())
            except ValueError:
                failure = "login answer is not JSON"
                response.failure(failure)
                raise AuthFailed(failure) from None
            except AuthFailed as error:
                response.failure(str(error))
                raise
