"""Obeying a 429's Retry-After (--honor-retry-after): the user waits as asked, within bounds, and says so.

Off by default: a stress test keeps its pressure, and the 429 is a failure either way. On, the wait comes
before the user's next question (with its think time or arrival slot after it), is at most
MAX_RETRY_AFTER_S and never passes the end of the test; each wait is published as a RetryAfterWait record,
counted in summary.json's ``retry_after`` section.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import gevent

from users.common import records

MAX_RETRY_AFTER_S = 60.0
"""The longest wait a Retry-After can impose; a target asking for an hour gets a minute."""


def retry_after_seconds(value: Any, now: float | None = None) -> float | None:
    """Seconds a Retry-After value asks to wait (delay-seconds or an HTTP date), None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text[:12]), 10**9))
    try:
        asked = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if not math.isfinite(asked):
        return None
    return max(0.0, asked - (time.time() if now is None else now))


@dataclass(frozen=True, slots=True)
class RetryAfterWait:
    """One wait a user made because a 429's Retry-After asked for it."""

    seconds: float


def seconds_left(environment: Any) -> float:
    """Seconds until the test's -t ends (counted from the stats' start, so never later); inf without -t."""
    options = getattr(environment, "parsed_options", None)
    run_time = getattr(options, "run_time", None)
    stats = getattr(environment, "stats", None)
    started = getattr(getattr(stats, "total", None), "start_time", None)
    if not run_time or not started:
        return math.inf
    return max(0.0, started + float(run_time) - time.time())


class RetryAfterWaiter:
    """One user's pending Retry-After wait: noted from a 429, waited before the next question."""

    __slots__ = ("environment", "honor", "pending_s")

    def __init__(self, environment: Any, honor: bool) -> None:
        self.environment = environment
        self.honor = honor
        self.pending_s = 0.0

    def note(self, status: int, headers: Any) -> None:
        """Remember the wait a 429 asks for (when honouring Retry-After)."""
        if not self.honor or status != 429 or headers is None:
            return
        asked = retry_after_seconds(headers.get("retry-after"))
        if asked is not None:
            self.pending_s = min(asked, MAX_RETRY_AFTER_S)

    def wait(self) -> None:
        """Sleep the pending wait (bounded by the end of the test) and publish it."""
        pending, self.pending_s = min(self.pending_s, seconds_left(self.environment)), 0.0
        if pending <= 0:
            return
        started = time.monotonic()
        try:
            gevent.sleep(pending)
        finally:  # a stop during the wait still counts the part waited
            records.publish(self.environment, RetryAfterWait(time.monotonic() - started))
