"""Statistics of one time window, computed from two cumulative snapshots of Locust-style counters.

Locust keeps, per request name, cumulative ``num_requests``, ``num_failures`` (failures are also counted
in ``num_requests``) and a histogram ``response_times`` of rounded ms -> count. A controller that must
judge only its own window takes a :class:`Snapshot` at the window's start and end; :class:`WindowStats`
then works on the histogram *difference*, so percentiles are true window percentiles, never an average
of percentiles, and the rate is over the real elapsed time between the snapshots.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Snapshot:
    """The cumulative state of one stats row (or a sum of rows) at ``time`` (seconds, any clock)."""

    time: float
    num_requests: int = 0
    num_failures: int = 0
    response_times: Mapping[int, int] = field(default_factory=dict)
    """Rounded response time in ms -> number of requests, as in Locust's ``StatsEntry.response_times``."""
    total_response_time: float | None = None
    """Sum of exact response times in ms, when known; gives an exact window average."""

    @classmethod
    def combine(cls, snapshots: Iterable[Snapshot], time: float | None = None) -> Snapshot:
        """Sum several rows taken at the same moment (e.g. all plain request rows) into one."""
        rows = list(snapshots)
        histogram: Counter[int] = Counter()
        for row in rows:
            histogram.update(row.response_times)
        totals = [row.total_response_time for row in rows]
        return cls(
            time=time if time is not None else max((row.time for row in rows), default=0.0),
            num_requests=sum(row.num_requests for row in rows),
            num_failures=sum(row.num_failures for row in rows),
            response_times=dict(histogram),
            total_response_time=None if None in totals else sum(t for t in totals if t is not None),
        )


@dataclass(frozen=True)
class WindowStats:
    """What happened between two snapshots: counts, failure ratio, rate and histogram percentiles."""

    start: float
    end: float
    count: int
    failures: int
    response_times: Mapping[int, int]
    total_response_time: float | None = None

    @classmethod
    def between(cls, before: Snapshot, after: Snapshot) -> WindowStats:
        """The window from ``before`` to ``after``; if the counters went backwards (stats reset), ``after`` alone."""
        if after.time < before.time:
            raise ValueError(f"snapshot times go backwards: {before.time} then {after.time}")
        if after.num_requests < before.num_requests or after.num_failures < before.num_failures:
            before = Snapshot(time=before.time)
        histogram = {}
        for bucket, count in after.response_times.items():
            diff = count - before.response_times.get(bucket, 0)
            if diff > 0:
                histogram[bucket] = diff
        total = None
        if after.total_response_time is not None and before.total_response_time is not None:
            total = after.total_response_time - before.total_response_time
        elif after.total_response_time is not None and before.num_requests == 0:
            total = after.total_response_time
        return cls(
            start=before.time,
            end=after.time,
            count=after.num_requests - before.num_requests,
            failures=after.num_failures - before.num_failures,
            response_times=histogram,
            total_response_time=total,
        )

    @property
    def elapsed(self) -> float:
        """Real length of the window in seconds."""
        return self.end - self.start

    @property
    def rps(self) -> float:
        """Requests per second over the real elapsed time (0 for an empty or zero-length window)."""
        return self.count / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def fail_ratio(self) -> float:
        """Failures / requests in the window (0 when nothing happened)."""
        return self.failures / self.count if self.count > 0 else 0.0

    def percentile(self, fraction: float) -> float | None:
        """The response time (ms) that ``fraction`` (0..1) of the window's requests finished within."""
        return histogram_percentile(self.response_times, fraction)

    @property
    def avg(self) -> float | None:
        """Mean response time (ms): exact when the snapshots carry totals, else from the histogram."""
        samples = sum(self.response_times.values())
        if samples == 0:
            return None
        if self.total_response_time is not None and self.count == samples:
            return self.total_response_time / samples
        return sum(bucket * count for bucket, count in self.response_times.items()) / samples

    @property
    def max(self) -> float | None:
        """Largest response time bucket (ms) seen in the window."""
        return float(max(self.response_times)) if self.response_times else None

    def metrics(self) -> dict[str, float | None]:
        """The window as SLO metric values: p50 p90 p95 p99 avg max (ms), fail_ratio, rps."""
        latency_none = self.count == 0
        return {
            "p50": None if latency_none else self.percentile(0.50),
            "p90": None if latency_none else self.percentile(0.90),
            "p95": None if latency_none else self.percentile(0.95),
            "p99": None if latency_none else self.percentile(0.99),
            "avg": None if latency_none else self.avg,
            "max": None if latency_none else self.max,
            "fail_ratio": None if latency_none else self.fail_ratio,
            "rps": self.rps,
        }


def histogram_percentile(histogram: Mapping[int, int], fraction: float) -> float | None:
    """Nearest-rank percentile of a bucket -> count histogram, matching Locust's own calculation.

    The answer is the bucket holding the ``int(n * fraction) + 1``-th smallest sample (capped at n), which is
    what ``locust.stats.calculate_response_time_percentile`` returns; None for an empty histogram.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"percentile fraction must be within 0..1, got {fraction}")
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = min(int(total * fraction) + 1, total)
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return float(bucket)
    return float(max(histogram))  # unreachable with non-negative counts
