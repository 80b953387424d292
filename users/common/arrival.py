"""Open-workload arrivals: when requests are due (constant or Poisson, optionally ramping), and how late they ran.

In an open workload requests start on a schedule, whatever the server does; a pool of users takes each due
start when one is free. When the pool is exhausted starts run late, and measuring latency from the actual
start would hide exactly the delay a real client would see (coordinated omission). So the schedule hands
out due times, :class:`ShortfallCounter` accounts for late and dropped starts, and the latency to report is
``finished - scheduled``.

Times follow the cumulative intensity ``L(t)`` (expected arrivals since ``start``): constant arrivals sit at
``L(t) = 0.5, 1.5, 2.5, ...`` and Poisson arrivals at ``L(t)`` advanced by Exp(1) gaps (time rescaling), which is
exact for a linearly ramping rate too.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from core.errors import InputError
from core.histogram import Histogram

KINDS = ("constant", "poisson")


class ArrivalSchedule:
    """Scheduled request start times at ``rate_per_s``, ramping linearly to ``ramp_to`` over ``ramp_time_s``."""

    def __init__(
        self,
        rate_per_s: float,
        kind: str = "constant",
        ramp_to: float | None = None,
        ramp_time_s: float = 0.0,
        seed: int | None = None,
        start: float = 0.0,
    ) -> None:
        if kind not in KINDS:
            raise InputError(f"arrival kind {kind!r}: expected one of {', '.join(KINDS)}")
        if rate_per_s < 0 or (ramp_to is not None and ramp_to < 0) or ramp_time_s < 0:
            raise InputError(f"arrival rates and ramp time must not be negative (got {rate_per_s}, {ramp_to})")
        self.rate_per_s = rate_per_s
        self.kind = kind
        self.final_rate = rate_per_s if ramp_to is None else ramp_to
        self.ramp_time_s = ramp_time_s if ramp_to is not None else 0.0
        self.start = start
        self._random = random.Random(seed)
        # Cumulative intensity of the next arrival; constant arrivals sit mid-way (0.5, 1.5, ...) so a ramp
        # from zero does not fire at once and the count up to any time is within half an arrival of expected.
        self._position = self._random.expovariate(1.0) if kind == "poisson" else 0.5
        self._next = self._time_of(self._position)

    def rate_at(self, time: float) -> float:
        """The arrival rate (per second) at ``time``."""
        elapsed = time - self.start
        if elapsed < 0:
            return 0.0
        if elapsed >= self.ramp_time_s:
            return self.final_rate
        return self.rate_per_s + (self.final_rate - self.rate_per_s) * elapsed / self.ramp_time_s

    def expected_count(self, time: float) -> float:
        """Expected arrivals from ``start`` to ``time`` (the cumulative intensity)."""
        elapsed = max(time - self.start, 0.0)
        ramp = min(elapsed, self.ramp_time_s)
        in_ramp = self.rate_per_s * ramp
        if self.ramp_time_s > 0:
            in_ramp += (self.final_rate - self.rate_per_s) * ramp * ramp / (2 * self.ramp_time_s)
        return in_ramp + self.final_rate * (elapsed - ramp)

    def peek(self) -> float:
        """The next due time without taking it (``inf`` when the rate has fallen to zero for good)."""
        return self._next

    def next_due(self) -> float:
        """Take and return the next due time."""
        due = self._next
        self._position += self._gap()
        self._next = self._time_of(self._position)
        return due

    def take_due(self, now: float) -> list[float]:
        """Take every due time up to ``now``, oldest first (for a dispatcher woken late)."""
        taken = []
        while self._next <= now:
            taken.append(self.next_due())
        return taken

    def __iter__(self) -> Iterator[float]:
        while not math.isinf(self._next):
            yield self.next_due()

    def _gap(self) -> float:
        return self._random.expovariate(1.0) if self.kind == "poisson" else 1.0

    def _time_of(self, position: float) -> float:
        """Inverse of ``expected_count``: the time at which ``position`` arrivals are expected."""
        if position <= 0:
            return self.start
        ramp_total = self.expected_count(self.start + self.ramp_time_s)
        if position <= ramp_total and self.ramp_time_s > 0:
            # Solve r0*t + (r1 - r0)*t^2/(2R) = position in the numerically stable form.
            a = (self.final_rate - self.rate_per_s) / (2 * self.ramp_time_s)
            b = self.rate_per_s
            return self.start + 2 * position / (b + math.sqrt(max(b * b + 4 * a * position, 0.0)))
        if self.final_rate <= 0:
            return math.inf
        return self.start + self.ramp_time_s + (position - ramp_total) / self.final_rate


class ShortfallCounter:
    """Counts scheduled starts that could not be served on time (no free user) and how late they ran."""

    def __init__(self, tolerance_s: float = 0.01) -> None:
        self.tolerance_s = tolerance_s
        """Lateness up to this is timer jitter, not a shortfall."""
        self.scheduled = 0
        self.on_time = 0
        self.late = 0
        self.dropped = 0
        """Starts that never ran (e.g. still queued when the test ended)."""
        self._lateness_ms = Histogram()
        self._total_lateness_s = 0.0
        self.max_lateness_s = 0.0
        self.paced_from: float | None = None
        """Wall-clock time (epoch seconds) pacing began for these counts; None until opened."""
        self.paced_until: float | None = None
        """Wall-clock time these counts were taken off the pacer; None while it still runs."""

    def open(self, at: float) -> None:
        """Note that pacing for these counts began at ``at`` (epoch seconds)."""
        self.paced_from = at

    def close(self, at: float) -> None:
        """Note that these counts end at ``at`` (epoch seconds): the pacer hands them over."""
        self.paced_until = at

    @property
    def paced_s(self) -> float | None:
        """Seconds during which these starts were paced (the window the achieved rate is measured over)."""
        if self.paced_from is None or self.paced_until is None:
            return None
        return max(self.paced_until - self.paced_from, 0.0)

    def record(self, scheduled_at: float, started_at: float) -> float:
        """Note a start taken at ``started_at`` for ``scheduled_at``; returns its lateness in seconds.

        Add the lateness to the measured response time (or time from ``scheduled_at``) to report latency free
        of coordinated omission.
        """
        lateness = max(started_at - scheduled_at, 0.0)
        self.scheduled += 1
        if lateness > self.tolerance_s:
            self.late += 1
        else:
            self.on_time += 1
        self._lateness_ms.add(lateness * 1000)
        self._total_lateness_s += lateness
        self.max_lateness_s = max(self.max_lateness_s, lateness)
        return lateness

    def drop(self, scheduled_at: float) -> None:
        """Note a scheduled start that never ran."""
        self.scheduled += 1
        self.dropped += 1

    @property
    def shortfall(self) -> int:
        """Starts not served on time: late plus dropped."""
        return self.late + self.dropped

    @property
    def shortfall_ratio(self) -> float:
        """Shortfall as a share of all scheduled starts (0 when none)."""
        return self.shortfall / self.scheduled if self.scheduled else 0.0

    def lateness_percentile(self, fraction: float) -> float | None:
        """Lateness in seconds that ``fraction`` of the started requests stayed within (None if none started)."""
        ms = self._lateness_ms.percentile(fraction * 100)
        return None if ms is None else ms / 1000.0

    @property
    def mean_lateness_s(self) -> float | None:
        """Mean lateness of started requests in seconds."""
        started = self.on_time + self.late
        return self._total_lateness_s / started if started else None

    def to_message(self) -> dict[str, Any]:
        """A compact form for sending to the Locust master."""
        counts = [self.scheduled, self.on_time, self.late, self.dropped, self._total_lateness_s, self.max_lateness_s]
        span = [self.paced_from, self.paced_until]
        return {"counts": counts, "span": span, "lateness": list(self._lateness_ms.counts.items())}

    def merge_message(self, message: dict[str, Any]) -> None:
        """Add another process's counts sent with to_message."""
        scheduled, on_time, late, dropped, total, longest = message["counts"]
        self.scheduled += scheduled
        self.on_time += on_time
        self.late += late
        self.dropped += dropped
        self._total_lateness_s += total
        self.max_lateness_s = max(self.max_lateness_s, longest)
        self._lateness_ms.merge(message["lateness"])
        # Processes pace side by side: the window is the union of theirs, from the first start to the last end.
        began, ended = message["span"]
        if began is not None:
            self.paced_from = began if self.paced_from is None else min(self.paced_from, began)
        if ended is not None:
            self.paced_until = ended if self.paced_until is None else max(self.paced_until, ended)

    def summary(self) -> dict[str, float | int | None]:
        """Counts and lateness (seconds) for reports."""
        return {
            "scheduled": self.scheduled,
            "on_time": self.on_time,
            "late": self.late,
            "dropped": self.dropped,
            "shortfall_ratio": self.shortfall_ratio,
            "lateness_p50_s": self.lateness_percentile(0.5),
            "lateness_p95_s": self.lateness_percentile(0.95),
            "lateness_max_s": self.max_lateness_s if self.on_time + self.late else None,
            "lateness_mean_s": self.mean_lateness_s,
            "paced_s": None if self.paced_s is None else round(self.paced_s, 3),
            "achieved_rate_per_s": self.achieved_rate_per_s,
        }

    @property
    def achieved_rate_per_s(self) -> float | None:
        """Starts taken per second of pacing (not of the whole run, whose start-up paces nothing)."""
        paced_s = self.paced_s
        if not paced_s:
            return None
        return round((self.on_time + self.late) / paced_s, 3)
