"""One real exchange before the load, made with a user's own code but counted nowhere (``User.probe``).

A wrong path or a missing key otherwise shows only as a whole run of failures. A user class that offers
``probe(environment) -> str | None`` builds one instance of itself on a private copy of the Environment (its
request events go to a list here, not to Locust's stats, the run folder or any plugin), runs its exchange once
within PROBE_TIMEOUT_S, and returns what is misconfigured, or None. Only misconfiguration stops a run (a path
that is not there, a key that is refused, an answer of another shape, a target that cannot be reached); what
load or chance explains (5xx, 429, timeouts, a cut answer) is logged as a warning and the run goes on.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import gevent
from locust import Events

from core.redaction import redact
from users.auth.cognito_auth import accounts_made_here_forgotten
from users.common import records
from users.common.answers import MISSING, dig

PROBE_TIMEOUT_S = 10.0
"""Most seconds any timeout of the probe's exchange may be (--request-timeout, --first-token-timeout, …): a probe
cannot hang a start."""

FIELDS_SHOWN = 8
"""Fields of an answer named at most when the answer field is not among them."""

MISCONFIGURED = {
    "HTTP 404": "the path is not there",
    "HTTP 405": "the path does not take this method",
    "HTTP 401": "the key or sign-in was refused",
    "HTTP 403": "the key or sign-in was refused",
    "connection refused": "nothing listens at --host",
    "connection error (gaierror)": "the host name of --host does not resolve",
    "connection error (SSL": "TLS failed (certificate or https/http mix-up; --insecure skips the check)",
}
"""Failure names (their start) that mean the options are wrong, not that the target is busy, and why."""

STEPS = ("login failed:", "handshake")
"""Words before a failure name when a step before the question failed: ``login failed: HTTP 401 Unauthorized``."""

logger = logging.getLogger("chatswarm")

U = TypeVar("U")


def misconfiguration(failure: str | None) -> str | None:
    """``failure (why)`` when a failure name means the options are wrong, else None."""
    for start, reason in MISCONFIGURED.items():
        if failure and failure.startswith((start, *(f"{step} {start}" for step in STEPS))):
            return f"{failure} ({reason})"
    return None


def failure_name(event: dict[str, Any]) -> str | None:
    """The failure name of one collected request event (secrets masked, as on Locust's events), or None."""
    exception = event.get("exception")
    return redact(str(exception)) if exception else None


def run_probe(user_class: type[U], environment: Any, exchange: Callable[[U], None]) -> list[dict[str, Any]]:
    """Build one ``user_class`` on a private copy of ``environment``, run ``exchange`` once; its request events.

    Every timeout in the options is cut to PROBE_TIMEOUT_S; the whole probe is also bounded by twice that.
    """
    collected: list[dict[str, Any]] = []
    private = copy.copy(environment)
    private.__dict__.pop(records.STATE, None)  # per-run objects of its own: nothing reaches the run's plugins
    private.events = Events()
    private.events.request.add_listener(lambda **event: collected.append(event))
    private.parsed_options = _short_timeouts(environment.parsed_options)
    if environment.host:
        user_class.host = environment.host  # as Locust's runner does when it starts the users
    with accounts_made_here_forgotten():
        user = user_class(private)
        try:
            with gevent.Timeout(2 * PROBE_TIMEOUT_S, False):
                exchange(user)
        finally:
            stop = getattr(user, "on_stop", None)
            collected_so_far = list(collected)
            if stop:
                stop()
    return collected_so_far


def keeping_answers(exchange: Callable[[Any], None], answers: list[Any]) -> Callable[[Any], None]:
    """``exchange`` with the ChatUser's ``exchange(...)`` keeping every answer it yields (body read) in ``answers``.

    (The response in a request event is Locust's copy made before the body was read.)
    """

    def run(user: Any) -> None:
        own = user.exchange

        @contextmanager
        def keeping(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with own(*args, **kwargs) as answer:
                answers.append(answer)
                yield answer

        user.exchange = keeping
        exchange(user)

    return run


def _short_timeouts(options: Any) -> Any:
    shorter = copy.copy(options)
    for name, value in vars(options).items():
        if name.endswith("_timeout") and isinstance(value, int | float) and not isinstance(value, bool):
            setattr(shorter, name, min(value, PROBE_TIMEOUT_S))
    return shorter


def judged(events: list[dict[str, Any]], kind: str, accounts: int = 1, path: str = "") -> str | None:
    """The misconfiguration among a probe's request events, or None; other failures are logged as a warning.

    ``kind`` names the user in the warning. No event at all (the probe ran out of time) is a warning too. With
    several ``accounts`` a refused sign-in is one account's, not the run's: a warning. The message names the
    request's method and path (``path``, e.g. ``POST /v1/chat/completions``, when the event carries no URL).
    """
    failures = []
    for event in reversed(events):  # the last word: a retried request's second answer
        failure = failure_name(event)
        if not failure:
            continue
        failures.append(failure)
        if accounts > 1 and failure.startswith("login failed"):
            continue
        if found := misconfiguration(failure):
            url = event.get("url")
            where = f"{event.get('request_type')} {urlsplit(url).path}" if url else path
            return f"{where}: {found}" if where else found
    if not events:
        logger.warning(f"probe: {kind} got no answer within {2 * PROBE_TIMEOUT_S:g} s; starting anyway")
    elif failures:
        logger.warning(f"probe: {kind}'s first exchange failed ({failures[0]}); starting anyway")
    return None


def missing_field(body: Any, dotted_path: str, flag: str) -> str | None:
    """What to say when ``dotted_path`` is not in a parsed JSON answer (the fields it has instead), else None."""
    if dig(body, dotted_path) is not MISSING:
        return None
    reached, node = [], body
    for key in dotted_path.split("."):
        found = dig(node, key)
        if found is MISSING:
            break
        reached.append(key)
        node = found
    where = f"'{'.'.join(reached)}'" if reached else "it"
    if isinstance(node, dict):
        names = list(node)
        shown = ", ".join(str(name) for name in names[:FIELDS_SHOWN]) + (", …" if len(names) > FIELDS_SHOWN else "")
        has = f"{where} has: {shown}" if names else f"{where} is an empty object"
    elif isinstance(node, list):
        has = f"{where} is a list of {len(node)}"
    else:
        has = f"{where} is a {type(node).__name__}, not an object"
    return f"{flag} {dotted_path!r}: no such field in the answer; {has}"
