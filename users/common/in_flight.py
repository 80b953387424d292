"""Exchanges still in flight when a test ends: recorded apart as cut short, neither a success nor a failure.

When Locust stops a user (``-t`` reached, SIGTERM, Ctrl-C, a shape's end) it kills the user's greenlet
wherever it waits, and an exchange waiting for its answer would vanish without a row. Each user notes the
exchange it has in flight (``InFlight.begin``, closed when its task ends); Locust calls the user's
``on_stop`` after killing it, and ``cut_short`` then publishes a ``CutShort`` record. requests.csv writes
it as a row of its own and summary.json counts it in ``totals.cut_short``, so the rows add up to what the
target saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from users.common import records

CUT_SHORT = "cut short by the end of the test"
"""What requests.csv says of an exchange the test's end interrupted."""


@dataclass(frozen=True)
class CutShort:
    """An exchange the end of the test interrupted."""

    request_type: str
    name: str
    started_at: float
    """Wall-clock time (s) the exchange started."""
    elapsed_ms: float
    """How long it had been running when the test ended."""


def record_cut_short(environment: Any, request_type: str, name: str, started_at: float, elapsed_ms: float) -> None:
    """Record one exchange the end of the test interrupted (a user that tracks its exchanges itself)."""
    records.publish(environment, CutShort(request_type, name, started_at, elapsed_ms))


class InFlight:
    """The exchange one user has in flight, if any."""

    __slots__ = ("name", "request_type", "started")

    def __init__(self, request_type: str, name: str) -> None:
        self.request_type, self.name = request_type, name
        self.started: tuple[float, float] | None = None
        """(wall clock, perf_counter) at the start of the exchange in flight; None between exchanges."""

    def begin(self, name: str | None = None) -> None:
        """An exchange starts (``name``: its request name, when known)."""
        if name is not None:
            self.name = name
        self.started = (time.time(), time.perf_counter())

    def end(self) -> None:
        """The exchange is over (answered, failed or given up): nothing to record if the user stops now."""
        self.started = None

    def cut_short(self, environment: Any) -> None:
        """Record the exchange in flight, if any, as cut short (call from the user's on_stop)."""
        if self.started is None:
            return
        wall, perf = self.started
        self.started = None
        record_cut_short(environment, self.request_type, self.name, wall, (time.perf_counter() - perf) * 1000)
