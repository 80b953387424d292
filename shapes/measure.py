"""Measuring a time window from Locust's live stats, for shapes that judge or regulate (breakpoint, PID).

Locust's stats are cumulative; a shape snapshots every row at the start and end of its window and asks
for metrics of the difference, so each decision sees only data of its own window. Metric names are the
SLO names of core/slo.py: ``p95``, ``fail_ratio``, ``rps`` over the plain request rows; ``ttft_p95``,
``e2e_p50``, ``fanout_p99``, ``ttfa_avg`` over the rows of those request types; ``[NAME]`` restricts
to one request name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shapes.controllers.window import Snapshot, WindowStats

MEASUREMENT_TYPES = {"ttft": "TTFT", "e2e": "E2E", "fanout": "FANOUT", "ttfa": "TTFA"}
"""Metric families measured on their own stats rows (request types)."""

EXTRA_ROWS = {"TTFT", "FANOUT", "TTFA"}
"""Rows that time part of an exchange; plain metrics (p95, rps, fail_ratio) leave them out."""

RowKey = tuple[str, str]
"""(request type, name) of a stats row."""


@dataclass(frozen=True)
class StatsSnapshot:
    """Every stats row's cumulative state at one moment."""

    time: float
    rows: dict[RowKey, Snapshot]


def snapshot(stats: Any, now: float) -> StatsSnapshot:
    """Take a StatsSnapshot of Locust's request stats at ``now``."""
    rows = {
        (entry.method or "", entry.name): Snapshot(
            now, entry.num_requests, entry.num_failures, dict(entry.response_times), entry.total_response_time
        )
        for entry in stats.entries.values()
    }
    return StatsSnapshot(now, rows)


class WindowMeasure:
    """The metrics of the window between two snapshots: call it as ``measure(metric, name)``."""

    def __init__(self, before: StatsSnapshot, after: StatsSnapshot) -> None:
        self.before, self.after = before, after
        self._cache: dict[tuple[str | None, str | None], dict[str, float | None]] = {}

    def __call__(self, metric: str, name: str | None = None) -> float | None:
        family, _, statistic = metric.partition("_")
        if family in MEASUREMENT_TYPES and statistic:
            return self.metrics(MEASUREMENT_TYPES[family], name).get(statistic)
        return self.metrics(None, name).get(metric)

    def metrics(self, request_type: str | None, name: str | None) -> dict[str, float | None]:
        """All window metrics of the rows of one request type (None: the plain rows), optionally one name."""
        key = (request_type, name)
        if key not in self._cache:
            rows = [
                row
                for row in self.after.rows
                if (row[0] == request_type if request_type else row[0] not in EXTRA_ROWS)
                and (name is None or row[1] == name)
            ]
            start, end = self.before.time, self.after.time
            before = Snapshot.combine([self.before.rows.get(row, Snapshot(start)) for row in rows], time=start)
            after = Snapshot.combine([self.after.rows[row] for row in rows], time=end)
            self._cache[key] = WindowStats.between(before, after).metrics() if rows else {}
        return self._cache[key]
