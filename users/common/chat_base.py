"""What every HTTP chat user shares: prompts, think time, seeding, sign-in and request timeouts."""

from __future__ import annotations

import argparse
import itertools
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import gevent
from locust import FastHttpUser
from locust.contrib.fasthttp import FastHttpSession

from core.errors import InputError
from core.input_files import MAX_DATA_FILE_MB, MB
from core.options import parse_seconds_range, require_path, require_positive
from core.settings import Settings, setting
from core.tls import ConnectionSettings, context_factory
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
from users.common.http_answers import AnswerSettings, bounded_request, json_answer
from users.common.http_failures import MAX_REDIRECTS
from users.common.in_flight import InFlight
from users.common.parking import park
from users.common.prompts import PromptSource, prompt_source
from users.common.request_headers import HeaderSettings, request_headers
from users.common.retry_after import RetryAfterWaiter

_user_numbers = itertools.count()
_unseeded = random.Random()


def user_random(seed: int | None, user_number: int) -> random.Random:
    """A user's random numbers: its own reproducible stream with --seed; without, one shared by the process
    (a Random costs 2.5 KB, and idle participants are many)."""
    return random.Random(seed * 1_000_003 + user_number) if seed is not None else _unseeded


def between(rng: random.Random, span: tuple[float, float]) -> float:
    """A time drawn uniformly from ``span`` (low, high): low itself when the two are equal."""
    low, high = span
    return low if low == high else rng.uniform(low, high)


@dataclass(frozen=True)
class RhythmSettings(Settings):
    """When a simulated person acts: the think time between questions and the seed of its choices (read by
    every user, the voice callers included)."""

    think_time: str = setting("1-3", "Seconds a user waits between questions: 0, 2 or 1-3", web_ui=True)
    seed: str = setting("", "Seed for prompt picking and think times (empty = random)")

    def check(self) -> None:
        _ = self.seed_number, self.think_time_s

    @cached_property
    def seed_number(self) -> int | None:
        """The --seed as a number, or None for a random run."""
        text = self.seed.strip()
        try:
            return int(text) if text else None
        except ValueError:
            raise InputError(f"--seed: {text!r} is not a whole number") from None

    @cached_property
    def think_time_s(self) -> tuple[float, float]:
        """The --think-time as (low, high) seconds."""
        return parse_seconds_range(self.think_time, "--think-time")


@dataclass(frozen=True)
class ChatSettings(RhythmSettings):
    """The options every chat user reads (pacing's and Cognito's are their modules' own)."""

    prompts: str = setting(
        "",
        'JSONL file or folder of them, one {"prompt": ...} per line; empty = the built-in sample questions',
        web_ui=True,
    )
    prompt_weights: str = setting("", "How often each prompt category is asked, e.g. simple=3,common=5,complex=2")
    max_samples: int = setting(0, "Use at most this many prompts (0 = all)")
    auth: str = setting("none", "How users sign in", choices=AUTH_KINDS, web_ui=True)
    login_path: str = setting("/api/auth/login", "Login endpoint for --auth login")
    login_user_field: str = setting("email", "JSON field that carries the account name")
    accounts: str = setting("", "CSV of accounts (email,password), one per user; else LOGIN_EMAIL")
    max_data_file_mb: int = setting(
        MAX_DATA_FILE_MB, "Largest --prompts (a file, or a folder's files) or --accounts file, in MB", web_ui=False
    )
    token_refresh_margin: float = setting(
        DEFAULT_REFRESH_MARGIN_S, "Log in again this many seconds before a token expires"
    )
    conversation_turns: int = setting(5, "Questions per conversation before a user starts a new one", web_ui=True)

    def check(self) -> None:
        """Raise InputError naming the first bad option; loads the prompts and the accounts on the way."""
        super().check()
        if self.max_samples < 0:
            raise InputError(f"--max-samples: must be 0 (all) or more, got {self.max_samples}")
        if self.max_data_file_mb < 1:
            raise InputError(f"--max-data-file-mb: must be 1 or more, got {self.max_data_file_mb}")
        _ = self.prompt_source
        require_path(self.login_path, "--login-path", allow_url=True)
        _ = self.credentials
        require_positive(self.token_refresh_margin, "--token-refresh-margin", allow_zero=True)
        if self.conversation_turns < 1:
            raise InputError("--conversation-turns: must be 1 or more")

    @cached_property
    def prompt_source(self) -> PromptSource:
        """The prompts of the run (--prompts, --prompt-weights, --max-samples), loaded once per process."""
        return prompt_source(
            self.prompts or None, self.prompt_weights, self.max_samples, self.seed_number, self.max_data_file_mb * MB
        )

    @cached_property
    def credentials(self) -> tuple[Credentials, ...]:
        """The accounts users sign in with (--auth login or cognito): --accounts, else LOGIN_EMAIL/PASSWORD."""
        if self.auth not in ("login", "cognito"):
            return ()
        if self.accounts:
            return _cached_accounts(self.accounts, self.max_data_file_mb * MB)
        return (credentials_from_env(os.environ, self.auth),)


@lru_cache(maxsize=4)
def _cached_accounts(accounts_file: str, max_bytes: int) -> tuple[Credentials, ...]:
    return tuple(load_accounts(accounts_file, max_bytes, ChatSettings.flag("max_data_file_mb")))


@dataclass(frozen=True, slots=True)
class ChatSetup:
    """The chat options made ready for a run (ChatUser.settings): prompts loaded, think time and seed parsed."""

    prompts: PromptSource
    think_time: tuple[float, float]
    seed: int | None
    auth: str
    login_path: str
    login_user_field: str
    accounts: tuple[Credentials, ...]
    refresh_margin_s: float
    request_timeout_s: float
    conversation_turns: int
    insecure: bool


def chat_setup(options: Any) -> ChatSetup:
    """Parse and check the chat options; raises InputError naming the first bad one. Equal options give the
    same object (every user holds one)."""
    return _shared_setup(ChatSettings.read(options), ConnectionSettings.read(options))


@lru_cache(maxsize=16)
def _shared_setup(settings: ChatSettings, connection: ConnectionSettings) -> ChatSetup:
    return ChatSetup(
        prompts=settings.prompt_source,
        think_time=settings.think_time_s,
        seed=settings.seed_number,
        auth=settings.auth,
        login_path=settings.login_path.strip(),
        login_user_field=settings.login_user_field,
        accounts=settings.credentials,
        refresh_margin_s=settings.token_refresh_margin,
        request_timeout_s=connection.request_timeout,
        conversation_turns=settings.conversation_turns,
        insecure=connection.insecure,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options every chat user reads."""
    ChatSettings.add_arguments(parser)
    HeaderSettings.add_arguments(parser)  # every user sends them, the ones that are not chat users too
    cognito_auth.add_arguments(parser)
    pacing.add_arguments(parser)


def check_options(options: Any) -> None:
    """Raise InputError for a bad chat option (loading the prompts and accounts on the way)."""
    signs_in_with_cognito = chat_setup(options).auth == "cognito"
    HeaderSettings.read(options)
    cognito_auth.check_options(options)
    if signs_in_with_cognito:
        cognito_auth.check_pool()
    pacing.check_options(options)


class LatenessAwareEvent:
    """Locust's request event for one user, adding the current exchange's lateness to response times."""

    __slots__ = ("event", "lateness_ms")

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
    exchange_type = "POST"
    """Request type of this user's exchange rows (an exchange cut short by the test's end is recorded as one)."""
    max_redirects = MAX_REDIRECTS
    api_key_variables: tuple[str, ...] = ()
    """Environment variables an API key is taken from when --api-key is not given (none: only --api-key)."""

    def __init__(self, environment: Any) -> None:
        self.settings = chat_setup(environment.parsed_options)
        self.sent_headers = request_headers(environment.parsed_options, self.api_key_variables)
        """--header and --api-key: on every request of this user (the sign-in token wins for Authorization)."""
        self.answer_settings = AnswerSettings.read(environment.parsed_options)
        super().__init__(environment)
        runner = environment.runner
        self.user_number = next(_user_numbers) + 100_000 * (getattr(runner, "worker_index", 0) or 0)
        """This user's number in its process (offset per worker), used to pick its account."""
        self.rng = user_random(self.settings.seed, self.user_number)
        self.auth = self._token_provider()
        self.scheduled_start: float | None = None
        self.request_event = LatenessAwareEvent(environment.events.request)
        """Where this user's exchanges are reported; adds a paced request's lateness to its times."""
        self._adopt(self.client)
        self.in_flight = InFlight(self.exchange_type, "chat")
        """The exchange this user has in flight: recorded as cut short if the test ends during it."""
        self.retry_after = RetryAfterWaiter(environment, self.answer_settings.honor_retry_after)

    def _adopt(self, session: FastHttpSession) -> FastHttpSession:
        """Make an HTTP session this user's: its events carry the lateness, its sign-in wins over Basic auth."""
        if self.settings.auth != "none" or "authorization" in {name.lower() for name in self.sent_headers}:
            # Locust sends a URL's user:password as Basic auth over any Authorization a request carries; the one
            # the user asked for (a sign-in token, --api-key, --header) wins instead.
            session.auth_header = None
        session.request_event = self.request_event
        return session

    def new_http_session(self) -> FastHttpSession:
        """A session like the one FastHttpUser made at the start, for users that drop theirs while idle."""
        session = FastHttpSession(
            base_url=self.host,
            request_event=self.request_event,
            network_timeout=self.network_timeout,
            connection_timeout=self.connection_timeout,
            max_redirects=self.max_redirects,
            max_retries=self.max_retries,
            insecure=self.insecure,
            concurrency=self.concurrency,
            user=self,
            client_pool=self.client_pool,
            ssl_context_factory=self.ssl_context_factory,
            headers=self.default_headers,
            proxy_host=self.proxy_host,
            proxy_port=self.proxy_port,
        )
        return self._adopt(session)

    # What FastHttpUser reads while it builds the client, as properties: an instance keeps at most 28 attributes in
    # a shared-key dict (~300 bytes); one more and its dict is a full table (~1.6 KB), and idle users are many.
    @property
    def default_headers(self) -> dict[str, str]:  # type: ignore[override]
        """FastHttpSession sends them; a request's own headers win."""
        return self.sent_headers

    @property
    def network_timeout(self) -> float:  # type: ignore[override]
        return self.settings.request_timeout_s

    @property
    def connection_timeout(self) -> float:  # type: ignore[override]
        return self.settings.request_timeout_s

    @property
    def insecure(self) -> bool:  # type: ignore[override]
        """FastHttpUser skips certificate checks unless told otherwise; ours check them unless --insecure."""
        return self.settings.insecure

    @property
    def ssl_context_factory(self) -> Any:  # type: ignore[override]
        return context_factory(self.settings.insecure)

    def on_start(self) -> None:
        if pacing.current(self.environment) is not None:
            gevent.sleep(self.wait_time())  # with an arrival rate even the first request waits for its turn

    def on_stop(self) -> None:
        self.in_flight.cut_short(self.environment)

    def wait_time(self) -> float:
        self.in_flight.end()  # Locust asks for the wait when a task has ended
        self.retry_after.wait()  # with --honor-retry-after, first the wait a 429 asked for
        pacer = pacing.current(self.environment)
        if pacer is not None:
            now = time.monotonic()
            self.scheduled_start = pacer.claim(now)
            return max(0.0, self.scheduled_start - now)
        self.scheduled_start = None
        park(between(self.rng, self.settings.think_time))  # parked, not Locust's sleep: users/common/parking.py
        return 0.0

    def begin_exchange(self) -> None:
        """Call at the start of each task: with an arrival rate, notes how late it starts.

        The lateness is then added to every response time this exchange reports, so latency counts from
        the scheduled start.
        """
        self.in_flight.begin()
        pacer = pacing.current(self.environment)
        scheduled, self.scheduled_start = self.scheduled_start, None
        lateness_s = pacer.started(scheduled, time.monotonic()) if pacer and scheduled is not None else 0.0
        self.request_event.lateness_ms = lateness_s * 1000

    @contextmanager
    def exchange(self, method: str, path: str, **kwargs: Any) -> Iterator[Any]:
        """One request whose answer is read within --request-timeout and --max-answer-mb (``bounded_request``);
        a 429's Retry-After is noted for the next wait."""
        timeout_s, limits = self.settings.request_timeout_s, self.answer_settings
        with bounded_request(self.client, method, path, timeout_s, limits, **kwargs) as response:
            self.retry_after.note(response.status_code, response.headers)
            yield response

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
        with self.exchange("POST", self.settings.login_path, json=body, name="login") as response:
            failure = response.failure_name
            try:
                if failure:
                    raise AuthFailed(f"login failed: {failure}")
                return token_from_response(json_answer(response), time.monotonic())
            except ValueError:
                failure = "login answer is not JSON"
                response.failure(failure)
                raise AuthFailed(failure) from None
            except AuthFailed as error:
                response.failure(str(error))
                raise
