"""Amazon Cognito sign-in for simulated users (``--auth cognito``).

The pool comes from ``COGNITO_USER_POOL_ID``, ``COGNITO_CLIENT_ID``, optional ``COGNITO_CLIENT_SECRET`` and
``AWS_REGION`` (``.env`` or the environment); the accounts from ``LOGIN_EMAIL``/``LOGIN_PASSWORD`` or
``--accounts``. A user signs in with SRP (pycognito), or with ``USER_PASSWORD_AUTH`` when the app client does
not allow SRP; every token received is checked against the pool's signing keys.

Built not to disturb the measurement it serves:

- SRP costs ~70 ms of CPU per sign-in, so sign-ins and refreshes run on one worker thread, off the gevent
  loop, with the exponentiations cut into short steps (``users.auth.srp_pow``; gmpy2 when installed).
- Users that share an account share its tokens: one sign-in per account, renewed with the refresh token
  (no SRP) before they expire, by one user at a time while the others wait for the result.
- One boto3 client and one copy of the signing keys per process and pool. boto3 uses its own endpoint chain
  (``AWS_ENDPOINT_URL``, profiles), and the keys come from the same endpoint as the tokens.

Sign-ins and refreshes appear in Locust's statistics as ``COGNITO sign-in`` and ``COGNITO refresh`` rows
(their own duration, SRP included); a failed one is a failure there with one line saying what to do.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from gevent.lock import Semaphore
from gevent.threadpool import ThreadPool

from core.errors import InputError
from core.settings import Settings, setting
from users.auth.cognito_client import CognitoClient, CognitoSettings, CognitoTokens, cognito_settings
from users.auth.providers import DEFAULT_REFRESH_MARGIN_S, AuthFailed, Credentials, TokenProvider

TOKEN_CHOICES = ("id", "access")
"""Which of the sign-in's tokens is sent (--cognito-token)."""

SIGN_IN_RETRY_S = 30.0
"""After a failed sign-in, an account waits this long before it tries again (wrong passwords lock accounts)."""

REQUEST_TYPE = "COGNITO"
"""request_type of the sign-in and refresh rows in Locust's statistics."""

Report = Callable[..., None]
"""Locust's ``events.request.fire``."""


@dataclass(frozen=True)
class CognitoTokenSettings(Settings):
    """The options of --auth cognito: which token is sent, and in which header."""

    cognito_token: str = setting("id", "Cognito token to send: id or access", choices=TOKEN_CHOICES)
    cognito_header: str = setting("Authorization", "Header that carries the Cognito token")
    cognito_scheme: str = setting("Bearer", "Word before the Cognito token in the header ('none' = bare)")

    def check(self) -> None:
        if not self.cognito_header.strip():
            raise InputError("--cognito-header: must not be empty")


DEFAULT_TOKEN_SETTINGS = CognitoTokenSettings()
"""The Cognito options' defaults (a provider made without options, as in tests)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of --auth cognito."""
    CognitoTokenSettings.add_arguments(parser)


def check_options(options: Any) -> None:
    """Raise InputError for a bad Cognito option."""
    CognitoTokenSettings.read(options)


def check_pool() -> None:
    """Raise InputError for missing COGNITO_* settings in the environment or .env (for --auth cognito)."""
    cognito_settings(os.environ)


_sign_in_threads: dict[int, ThreadPool] = {}


def off_loop(function: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking, CPU-heavy call on this process's one sign-in thread; only the calling greenlet waits.

    One thread, not more: more threads only compete with the gevent loop for the GIL.
    """
    pool = _sign_in_threads.get(os.getpid())  # a pool made before a fork (--processes) is no use after it
    if pool is None:
        pool = _sign_in_threads[os.getpid()] = ThreadPool(1)
    return pool.apply(function, args)


def _timed(function: Callable[[Any], CognitoTokens], argument: Any) -> tuple[CognitoTokens | AuthFailed, float]:
    started = time.perf_counter()
    try:
        outcome: CognitoTokens | AuthFailed = function(argument)
    except AuthFailed as error:
        outcome = error
    return outcome, (time.perf_counter() - started) * 1000


class CognitoAccount:
    """One account's tokens, shared by every simulated user of this process that signs in with it."""

    def __init__(
        self,
        cognito: CognitoClient,
        credentials: Credentials,
        report: Report | None = None,
        run: Callable[..., Any] = off_loop,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cognito = cognito
        self.credentials = credentials
        self.report = report
        self._run = run
        self._clock = clock
        self._lock = Semaphore()
        self._tokens: CognitoTokens | None = None
        self._failure: AuthFailed | None = None
        self._retry_at = 0.0
        self.sign_ins = 0
        self.refreshes = 0

    def tokens(self, margin_s: float) -> CognitoTokens:
        """Valid tokens for the account: signed in, or refreshed when within the margin of expiry."""
        current = self._tokens
        if current is not None and not current.needs_refresh(self._clock(), margin_s):
            return current
        with self._lock:  # one sign-in or refresh per account; the others wait and take its result
            current = self._tokens
            now = self._clock()
            if current is not None and not current.needs_refresh(now, margin_s):
                return current
            if self._failure is not None and now < self._retry_at:
                raise self._failure
            try:
                fresh = None
                if current is not None and current.refresh_token:
                    try:
                        fresh = self._exchange("refresh", self.cognito.refresh, current)
                    except AuthFailed:
                        fresh = None  # refresh token expired or revoked: sign in afresh
                if fresh is None:
                    fresh = self._exchange("sign-in", self.cognito.sign_in, self.credentials)
            except AuthFailed as error:
                self._failure, self._retry_at = error, self._clock() + SIGN_IN_RETRY_S
                raise
            self._tokens, self._failure = fresh, None
            return fresh

    def reject(self, value: str | None) -> None:
        """The server refused ``value``: renew on next use, unless another user has renewed already."""
        current = self._tokens
        if current is not None and value in (current.id_token, current.access_token):
            self._tokens = replace(current, expires_at=current.obtained_at)

    def _exchange(self, name: str, function: Callable[[Any], CognitoTokens], argument: Any) -> CognitoTokens:
        outcome, elapsed_ms = self._run(_timed, function, argument)
        if name == "sign-in":
            self.sign_ins += 1
        else:
            self.refreshes += 1
        failure = outcome if isinstance(outcome, AuthFailed) else None
        if self.report is not None:
            self.report(
                request_type=REQUEST_TYPE,
                name=name,
                response_time=elapsed_ms,
                response_length=0,
                response=None,
                context={},
                exception=failure,
            )
        if failure is not None:
            raise failure
        return outcome


class CognitoAuth(TokenProvider):
    """One simulated user's provider: its account's current ID or access token in the chosen header."""

    def __init__(
        self,
        account: CognitoAccount,
        settings: CognitoTokenSettings = DEFAULT_TOKEN_SETTINGS,
        refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
    ) -> None:
        self.account = account
        self.use = settings.cognito_token
        scheme = settings.cognito_scheme
        self.scheme = "" if scheme.lower() in ("", "none") else scheme
        self.header = settings.cognito_header
        self.refresh_margin_s = refresh_margin_s
        self._sent: str | None = None

    def authorization(self) -> str | None:
        value = self._sent = self.account.tokens(self.refresh_margin_s).token(self.use).value
        return f"{self.scheme} {value}" if self.scheme else value

    def invalidate(self) -> None:
        self.account.reject(self._sent)

    @property
    def can_refresh(self) -> bool:
        return True


_clients: dict[tuple[int, CognitoSettings], CognitoClient] = {}
_accounts: dict[tuple[int, CognitoSettings, str], CognitoAccount] = {}


@contextmanager
def accounts_made_here_forgotten() -> Iterator[None]:
    """Accounts first signed in within are forgotten when it ends: the probe before the load must not lend its
    tokens, nor its private request event (where the account reports its sign-ins), to the run's users."""
    before = set(_accounts)
    try:
        yield
    finally:
        for key in set(_accounts) - before:
            del _accounts[key]


def cognito_provider(
    options: Any, credentials: Credentials, refresh_margin_s: float, report: Report | None
) -> CognitoAuth:
    """The provider for one simulated user: this process's client for the pool, the account's shared tokens."""
    settings = cognito_settings(os.environ)
    pid = os.getpid()
    cognito = _clients.get((pid, settings))
    if cognito is None:
        cognito = _clients[(pid, settings)] = CognitoClient(settings)
    account = _accounts.get((pid, settings, credentials.email))
    if account is None:
        account = _accounts[(pid, settings, credentials.email)] = CognitoAccount(cognito, credentials, report)
    return CognitoAuth(account, CognitoTokenSettings.read(options), refresh_margin_s)
