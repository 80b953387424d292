"""Every SLO metric, read from a metric book (core/metric_book.py): the whole run's, or a window's.

``BookMeasure(book, elapsed_s)`` is the ``measure(metric, name)`` that core/slo.py's ``evaluate`` asks. The
gate hands it the whole run's book, a shape the difference of two copies (``BookWindow``), so a metric means
the same in both and is computed the same way. Metrics, in SLO names (``[NAME]`` restricts to one request name):

- ``p50 p90 p95 p99 avg max``: exact response times of the successful exchanges (TTFT, FANOUT, TTFA rows are
  timings of an exchange, not exchanges); ``fail_ratio``: failed / all exchanges; ``rps``: exchanges / s.
- ``ttft_ itl_ tpot_ e2e_``: each streamed answer's own values (successful answers, as the ``llm`` section);
  ``tokens_per_s``: output tokens / s; ``goodput``: answers that met every per-answer SLO / s.
- ``fanout_ ttfa_ bargein_``: the successful FANOUT, TTFA and BARGE rows (BARGE: audio interruption latency).
- ``lateness_``: audio frames' send lateness and arrival starts' lateness; ``[audio]`` or ``[arrival]`` picks one.
- ``lost completeness duplicates``: plenary delivery, and ``call_setup`` (voice calls set up / tried), known for
  the whole run only (``run_values``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from core.histogram import Histogram
from core.metric_book import EXTRA_ROWS, MetricBook, RowTally, merged
from core.slo import RATIO_METRICS

ANSWER_FAMILIES = {"ttft", "itl", "tpot", "e2e"}
ROW_FAMILIES = {"fanout": "FANOUT", "ttfa": "TTFA", "bargein": "BARGE"}
RUN_ONLY_METRICS = frozenset(RATIO_METRICS) - {"fail_ratio"}
"""Plenary delivery is counted when members leave their rooms, call setup as calls end: known for a whole run,
not for a window."""


def statistic(histogram: Histogram, name: str) -> float | None:
    """``p95``, ``avg``, ``max`` … of a histogram (None when empty)."""
    if not histogram.total:
        return None
    if name == "avg":
        return histogram.mean()
    if name == "max":
        return max(histogram.counts) / 1000
    return histogram.percentile(float(name[1:]))


def combine(rows: list[RowTally]) -> RowTally:
    """One tally of several rows."""
    total = RowTally()
    for row in rows:
        total.merge(row)
    return total


def row_figures(row: RowTally, elapsed_s: float) -> dict[str, float | int | None]:
    """summary.json's figures of one row (or of the exchanges' total): count, failures, percentiles, rate."""
    figures: dict[str, float | int | None] = {"count": row.count, "failures": row.failures}
    for percent in ("p50", "p95", "p99"):
        figures[f"{percent}_ms"] = statistic(row.times, percent)
    successes = row.times.total
    figures["avg_ms"] = round(row.total_ms / successes, 2) if successes else None
    figures["max_ms"] = statistic(row.times, "max")
    figures["slowest_ms"] = None if row.slowest_ms is None else round(row.slowest_ms, 2)  # failures included
    figures["rps"] = round(row.count / elapsed_s, 3) if elapsed_s > 0 else None
    return figures


def request_figures(book: MetricBook, elapsed_s: float) -> dict[str, dict[str, float | int | None]]:
    """summary.json's ``requests``: figures per row, keyed ``"<request type> <name>"``."""
    return {f"{kind} {name}": row_figures(book.rows[(kind, name)], elapsed_s) for kind, name in sorted(book.rows)}


def total_figures(book: MetricBook, elapsed_s: float) -> dict[str, float | int | None]:
    """summary.json's ``totals``: the exchanges (not the timing rows), with their failure ratio."""
    total = combine(book.exchange_rows())
    figures = row_figures(total, elapsed_s)
    figures["fail_ratio"] = round(total.failures / total.count, 6) if total.count else 0.0
    figures["cut_short"] = sum(count for (kind, _), count in book.cut_short.items() if kind not in EXTRA_ROWS)
    return figures


class BookMeasure:
    """``measure(metric, name)`` over a book covering ``elapsed_s`` seconds; None means no data."""

    def __init__(
        self, book: MetricBook, elapsed_s: float, run_values: Mapping[str, float | None] | None = None
    ) -> None:
        self.book, self.elapsed_s = book, elapsed_s
        self.run_values = dict(run_values or {})
        """Metrics known for the whole run only (plenary ``lost`` …), when this measure covers the whole run."""

    def __call__(self, metric: str, name: str | None = None) -> float | None:
        family, _, stat = metric.partition("_")
        if metric in RUN_ONLY_METRICS:
            return self.run_values.get(metric) if name is None else None
        if family in ANSWER_FAMILIES and stat:
            answers = [a for n, a in self.book.answers.items() if name in (None, n)]
            return statistic(merged(a.timings[family] for a in answers), stat)
        if family in ROW_FAMILIES and stat:
            return statistic(combine(self.book.timing_rows(ROW_FAMILIES[family], name)).times, stat)
        if family == "lateness" and stat:
            sources = [h for source, h in self.book.lateness.items() if name in (None, source)]
            return statistic(merged(sources), stat)
        if metric in ("tokens_per_s", "goodput"):
            return self._answer_rate(metric, name)
        return self._exchanges(metric, name)

    def _answer_rate(self, metric: str, name: str | None) -> float | None:
        answers = [a for n, a in self.book.answers.items() if name in (None, n)]
        if not answers or self.elapsed_s <= 0:
            return None
        counted = sum(a.output_tokens if metric == "tokens_per_s" else a.good for a in answers)
        return counted / self.elapsed_s

    def _exchanges(self, metric: str, name: str | None) -> float | None:
        rows = self.book.exchange_rows(name)
        if not rows:
            return None
        total = combine(rows)
        if metric == "rps":
            return total.count / self.elapsed_s if self.elapsed_s > 0 else None
        if metric == "fail_ratio":
            return total.failures / total.count if total.count else None
        if metric == "avg":
            return total.total_ms / total.times.total if total.times.total else None
        return statistic(total.times, metric)


@dataclass(frozen=True)
class BookSnapshot:
    """A copy of a book at one moment (``time.monotonic()`` seconds): one end of a shape's window."""

    time: float
    book: MetricBook

    @classmethod
    def take(cls, book: MetricBook, now: float | None = None) -> BookSnapshot:
        return cls(time.monotonic() if now is None else now, book.copy())


def window_measure(before: BookSnapshot, after: BookSnapshot) -> BookMeasure:
    """The measure of what was filed between two snapshots."""
    return BookMeasure(after.book.minus(before.book), after.time - before.time)


__all__ = ["EXTRA_ROWS", "BookMeasure", "BookSnapshot", "request_figures", "total_figures", "window_measure"]
