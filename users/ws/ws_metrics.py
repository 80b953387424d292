"""WebSocket figures second by second, to show latency and the three error rates against open connections.

Pure logic, no Locust imports. Every process samples how many WebSockets it has open several times a
second (a second's count is its last sample) and files each WebSocket event (connects, replies, fan-out
receptions, failures by class) under the second it happened in. The master merges the processes'
seconds; a second's connection count is the sum of each process's latest sample, and seconds with the
same count are pooled into one row of ``by_connections``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.histogram import Histogram
from users.common import records
from users.ws.ws_failures import FAILURE_CLASSES

COUNTED_TYPES = ("WS", "WSR")
"""Request types whose events count towards the error rates (connects, replies, lost connections)."""

LATENCY_SERIES = {"WSR": "reply", "FANOUT": "fanout"}
"""Request types whose successful response times are kept per second, and the series they go in."""

MAX_ROWS = 60
"""At most this many connection levels in ``by_connections``; neighbouring levels are pooled beyond it."""


@dataclass(frozen=True, slots=True)
class ConnectionsChanged:
    """A record: this process's open WebSocket connections went up or down by ``delta``."""

    delta: int


class ConnectionCounter:
    """Publishes each change of this process's open connections for the WebSocket report (one per Environment)."""

    __slots__ = ("environment",)

    def __init__(self, environment: Any) -> None:
        self.environment = environment

    def __call__(self, delta: int) -> None:
        records.publish(self.environment, ConnectionsChanged(delta))


def count_connections(environment: Any) -> Callable[[int], None]:
    """The ``on_open_change`` of a user's WebSocketConnection (shared by every connection of the Environment)."""
    return records.state(environment, ConnectionCounter, lambda: ConnectionCounter(environment))


class Second:
    """What happened in one wall-clock second."""

    __slots__ = ("events", "failures", "latency")

    def __init__(self) -> None:
        self.events = 0
        self.failures = dict.fromkeys(FAILURE_CLASSES, 0)
        self.latency = {series: Histogram() for series in LATENCY_SERIES.values()}

    def merge(self, other: dict[str, Any]) -> None:
        self.events += other["events"]
        for kind, count in zip(FAILURE_CLASSES, other["failures"], strict=True):
            self.failures[kind] += count
        for series, pairs in other["latency"].items():
            self.latency[series].merge(pairs)

    def to_message(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "failures": [self.failures[kind] for kind in FAILURE_CLASSES],
            "latency": {series: list(h.counts.items()) for series, h in self.latency.items() if h.total},
        }


class ConnectionTimeline:
    """Seconds of WebSocket events plus each process's connection samples."""

    def __init__(self) -> None:
        self.seconds: dict[int, Second] = {}
        self.samples: dict[str, dict[int, int]] = {}
        """Per process: second → open connections sampled then."""

    def sample(self, process: str, second: int, connections: int) -> None:
        self.samples.setdefault(process, {})[second] = connections

    def add(self, second: int, request_type: str, response_time: float | None, failure_kind: str | None) -> None:
        """File one request event (types other than COUNTED_TYPES and LATENCY_SERIES are ignored)."""
        series = LATENCY_SERIES.get(request_type)
        if request_type not in COUNTED_TYPES and series is None:
            return
        entry = self.seconds.get(second)
        if entry is None:
            entry = self.seconds[second] = Second()
        if request_type in COUNTED_TYPES:
            entry.events += 1
            if failure_kind is not None:
                entry.failures[failure_kind] += 1
        if series is not None and failure_kind is None and response_time is not None:
            entry.latency[series].add(response_time)

    @property
    def events(self) -> int:
        return sum(entry.events for entry in self.seconds.values())

    @property
    def empty(self) -> bool:
        return not self.seconds

    def to_message(self) -> dict[str, Any]:
        """A msgpack-friendly form (string keys) for sending to the master."""
        return {
            "seconds": {str(second): entry.to_message() for second, entry in self.seconds.items()},
            "samples": {process: {str(s): n for s, n in samples.items()} for process, samples in self.samples.items()},
        }

    def merge_message(self, message: dict[str, Any], process: str | None = None) -> None:
        """Add another process's figures; ``process`` names its samples (default: the names it sent)."""
        for second, figures in message["seconds"].items():
            self.seconds.setdefault(int(second), Second()).merge(figures)
        for sender, samples in message["samples"].items():
            own = self.samples.setdefault(process or sender, {})
            own.update((int(s), n) for s, n in samples.items())

    def connection_counter(self) -> Callable[[int], int]:
        """A function giving the open connections in all processes at a second: the sum of each
        process's latest sample at or before it."""
        steps = [(sorted(samples), samples) for samples in self.samples.values()]

        def connections_at(second: int) -> int:
            total = 0
            for times, samples in steps:
                at = bisect.bisect_right(times, second)
                if at:
                    total += samples[times[at - 1]]
            return total

        return connections_at

    def totals(self) -> dict[str, Any]:
        """Events, failures by class and the four rates over the whole run."""
        events = self.events
        failures = dict.fromkeys(FAILURE_CLASSES, 0)
        for entry in self.seconds.values():
            for kind, count in entry.failures.items():
                failures[kind] += count
        figures: dict[str, Any] = {"events": events, "failures": sum(failures.values()), "errors": failures}
        figures.update(_rates(events, failures))
        connections_at = self.connection_counter()
        sampled = {second for samples in self.samples.values() for second in samples}
        figures["connections_max"] = max(map(connections_at, sampled), default=0)
        return figures

    def by_connections(self) -> list[dict[str, Any]]:
        """One row per connection level: latency (replies and fan-out) and the error rates seen at it."""
        levels: dict[int, Second] = {}
        seconds: dict[int, int] = {}
        connections_at = self.connection_counter()
        for second in sorted(self.seconds):
            level = connections_at(second)
            levels.setdefault(level, Second()).merge(self.seconds[second].to_message())
            seconds[level] = seconds.get(level, 0) + 1
        groups = _pool(sorted(levels), MAX_ROWS)
        rows = []
        for group in groups:
            pooled = Second()
            for level in group:
                pooled.merge(levels[level].to_message())
            weight = sum(seconds[level] for level in group)
            connections = round(sum(level * seconds[level] for level in group) / weight)
            rows.append(_row(connections, weight, pooled))
        return rows


def _pool(levels: list[int], most: int) -> list[list[int]]:
    if len(levels) <= most:
        return [[level] for level in levels]
    size = -(-len(levels) // most)
    return [levels[i : i + size] for i in range(0, len(levels), size)]


def _rates(events: int, failures: dict[str, int]) -> dict[str, float | None]:
    def rate(count: int) -> float | None:
        return round(count / events, 6) if events else None

    figures = {"error_rate": rate(sum(failures.values()))}
    figures.update({f"{kind}_error_rate": rate(failures[kind]) for kind in FAILURE_CLASSES})
    return figures


def _row(connections: int, seconds: int, pooled: Second) -> dict[str, Any]:
    row: dict[str, Any] = {"connections": connections, "seconds": seconds, "events": pooled.events}
    for series, histogram in pooled.latency.items():
        row[f"{series}_count"] = histogram.total
        row[f"{series}_mean_ms"] = _round(histogram.mean())
        row[f"{series}_max_ms"] = _round(histogram.percentile(100))
        row[f"{series}_p95_ms"] = _round(histogram.percentile(95))
    row.update(_rates(pooled.events, pooled.failures))
    return row


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
