"""Exact, mergeable distributions: counts of values at three significant digits.

Workers send the counts to the master, which adds them, so every percentile is computed over all samples,
never averaged. Every Chatswarm distribution (LLM timings, WebSocket replies, fan-out, audio, arrival
lateness) is one of these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from core.speedups import count_values

PERCENTILES = (50, 90, 95, 99)
"""Percentiles reported for every distribution."""

SIGNIFICANT_DIGITS = 3


def bucket(value: float) -> int:
    """The histogram key of a value: the value in microseconds, rounded to three significant digits."""
    micros = round(value * 1000)
    if micros < 1000:
        return micros
    scale = 10 ** (int(math.log10(micros)) - SIGNIFICANT_DIGITS + 1)
    return round(micros / scale) * scale


class Histogram:
    """Counts of values (ms) at three significant digits; add, merge and read percentiles."""

    __slots__ = ("counts", "total")

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts or {})
        self.total = sum(self.counts.values())

    def add(self, value: float) -> None:
        if count_values is not None:
            self.total += count_values(self.counts, (value,), bucket)
            return
        key = bucket(value)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.total += 1

    def add_all(self, values: Iterable[float]) -> None:
        """Add many values (every answer's inter-token gaps come here): in C where it is built (core/speedups.py),
        else with ``bucket`` inlined for the usual magnitudes."""
        if count_values is not None:
            self.total += count_values(self.counts, values, bucket)
            return
        counts, added = self.counts, 0
        get = counts.get
        for value in values:
            key = round(value * 1000)
            if key >= 1000:
                scale = 10 if key < 10_000 else 100 if key < 100_000 else 1000 if key < 1_000_000 else 0
                key = round(key / scale) * scale if scale else bucket(value)
            counts[key] = get(key, 0) + 1
            added += 1
        self.total += added

    def merge(self, counts: dict[int, int] | Iterable[tuple[int, int]]) -> None:
        """Add the counts of another histogram (as a dict or as key/count pairs)."""
        for key, count in counts.items() if isinstance(counts, dict) else counts:
            self.counts[int(key)] = self.counts.get(int(key), 0) + count
            self.total += count

    def percentile(self, percent: float) -> float | None:
        """The value below which ``percent`` % of the values lie (nearest rank), in ms."""
        if not self.total:
            return None
        rank = max(1, math.ceil(self.total * percent / 100))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return key / 1000
        return max(self.counts) / 1000

    def mean(self) -> float | None:
        if not self.total:
            return None
        return sum(key * count for key, count in self.counts.items()) / self.total / 1000

    def summary(self) -> dict[str, float | int | None]:
        """count, mean and the reported percentiles, rounded for reading."""
        figures: dict[str, float | int | None] = {"count": self.total, "mean": _round(self.mean())}
        for percent in PERCENTILES:
            figures[f"p{percent}"] = _round(self.percentile(percent))
        return figures


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
