"""Chatswarm's metric book: every exchange's exact times and counts, in mergeable histograms.

One book per process files each request event (its exact response time, per request type and name) and
each streamed answer's own values (TTFT, ITL, TPOT, E2E, output tokens, good or not). Workers send their part
to the master and start afresh; the master adds the parts (``merge``), so percentiles are computed over all
samples, never averaged. A shape judges a time window as the difference of two copies of the book (``minus``).
The gate, the shapes and summary.json read every value from here (core/book_measure.py), so they agree to
the digit; Locust's own rows (rounded, failures included) are shown as Locust shows them and judge nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.histogram import Histogram

EXTRA_ROWS = frozenset({"TTFT", "FANOUT", "TTFA", "BARGE"})
"""Request types whose rows time part of an exchange (its first token, one reception, an answer's first audio):
they are not exchanges, so totals, the failure ratio and requests/s leave them out."""

ANSWER_FAMILIES = ("ttft", "itl", "tpot", "e2e")
"""Per-answer timings of streamed answers, kept per request name."""

RowKey = tuple[str, str]
"""(request type, name) of a request row."""


def histogram_minus(after: Histogram, before: Histogram) -> Histogram:
    """What ``after`` holds beyond ``before`` (the counts of a window)."""
    counts = {key: n - before.counts.get(key, 0) for key, n in after.counts.items()}
    return Histogram({key: n for key, n in counts.items() if n > 0})


def merged(histograms: Iterable[Histogram]) -> Histogram:
    """One histogram holding the counts of all."""
    total = Histogram()
    for histogram in histograms:
        total.merge(histogram.counts)
    return total


@dataclass
class RowTally:
    """One request row: exchanges, failures, and the exact times of the successful ones."""

    count: int = 0
    failures: int = 0
    times: Histogram = field(default_factory=Histogram)
    """Response times (ms) of successful requests."""
    total_ms: float = 0.0
    """Exact sum of the successful response times."""
    slowest_ms: float | None = None
    """The longest response time, failures included (a timeout is a failure)."""

    def add(self, response_time_ms: float | None, failed: bool) -> None:
        self.count += 1
        if response_time_ms is not None:
            self.slowest_ms = max(self.slowest_ms or 0.0, response_time_ms)
        if failed:
            self.failures += 1
        elif response_time_ms is not None:
            self.times.add(response_time_ms)
            self.total_ms += response_time_ms

    def merge(self, other: RowTally) -> None:
        self.count += other.count
        self.failures += other.failures
        self.times.merge(other.times.counts)
        self.total_ms += other.total_ms
        if other.slowest_ms is not None:
            self.slowest_ms = max(self.slowest_ms or 0.0, other.slowest_ms)

    def minus(self, before: RowTally) -> RowTally:
        if before.count > self.count:  # the book was reset (reset_stats) since ``before``: all of it is new
            before = RowTally()
        return RowTally(
            self.count - before.count,
            self.failures - before.failures,
            histogram_minus(self.times, before.times),
            self.total_ms - before.total_ms,
            self.slowest_ms,  # the slowest so far: a maximum cannot be taken apart
        )

    def to_message(self) -> list[Any]:
        return [self.count, self.failures, list(self.times.counts.items()), self.total_ms, self.slowest_ms]

    @classmethod
    def from_message(cls, message: list[Any]) -> RowTally:
        count, failures, pairs, total_ms, slowest_ms = message
        tally = cls(int(count), int(failures), Histogram(), float(total_ms), slowest_ms)
        tally.times.merge(pairs)
        return tally


@dataclass
class AnswerTally:
    """Streamed answers of one request name: counts, output tokens, goodput and each per-answer timing."""

    answers: int = 0
    failures: int = 0
    good: int = 0
    """Successful answers that met every per-answer SLO (goodput)."""
    output_tokens: int = 0
    timings: dict[str, Histogram] = field(default_factory=lambda: {family: Histogram() for family in ANSWER_FAMILIES})

    def merge(self, other: AnswerTally) -> None:
        self.answers += other.answers
        self.failures += other.failures
        self.good += other.good
        self.output_tokens += other.output_tokens
        for family, histogram in other.timings.items():
            self.timings[family].merge(histogram.counts)

    def minus(self, before: AnswerTally) -> AnswerTally:
        if before.answers > self.answers:  # the book was reset since ``before``
            before = AnswerTally()
        timings = {family: histogram_minus(h, before.timings[family]) for family, h in self.timings.items()}
        return AnswerTally(
            self.answers - before.answers,
            self.failures - before.failures,
            self.good - before.good,
            self.output_tokens - before.output_tokens,
            timings,
        )

    def to_message(self) -> list[Any]:
        timings = {family: list(h.counts.items()) for family, h in self.timings.items()}
        return [self.answers, self.failures, self.good, self.output_tokens, timings]

    @classmethod
    def from_message(cls, message: list[Any]) -> AnswerTally:
        answers, failures, good, tokens, timings = message
        tally = cls(int(answers), int(failures), int(good), int(tokens))
        for family, pairs in timings.items():
            tally.timings[family].merge(pairs)
        return tally


class MetricBook:
    """Exact figures of one process (or merged from several): request rows, streamed answers, send lateness."""

    def __init__(self) -> None:
        self.rows: dict[RowKey, RowTally] = {}
        self.answers: dict[str, AnswerTally] = {}
        self.lateness: dict[str, Histogram] = {}
        """Lateness (ms) by source, e.g. ``audio`` (frames sent late) or ``arrival`` (starts taken late)."""
        self.cut_short: dict[RowKey, int] = {}
        """Exchanges the end of the test interrupted, per row: neither successes nor failures."""

    @property
    def empty(self) -> bool:
        return not (self.rows or self.answers or self.lateness or self.cut_short)

    def add_request(self, request_type: str, name: str, response_time_ms: float | None, failed: bool) -> None:
        """File one request event."""
        self.rows.setdefault((request_type or "", name), RowTally()).add(response_time_ms, failed)

    def add_answer(
        self,
        name: str,
        *,
        failed: bool,
        good: bool = True,
        ttft_ms: float | None = None,
        itl_ms: Iterable[float] = (),
        tpot_ms: float | None = None,
        e2e_ms: float | None = None,
        output_tokens: int = 0,
    ) -> None:
        """File one streamed answer; a failed one counts but adds no timings."""
        tally = self.answers.setdefault(name, AnswerTally())
        tally.answers += 1
        if failed:
            tally.failures += 1
            return
        tally.good += good
        tally.output_tokens += output_tokens
        timings = tally.timings
        for family, value in (("ttft", ttft_ms), ("tpot", tpot_ms), ("e2e", e2e_ms)):
            if value is not None:
                timings[family].add(value)
        timings["itl"].add_all(itl_ms)

    def add_cut_short(self, request_type: str, name: str, count: int = 1) -> None:
        """File exchanges the end of the test interrupted."""
        key = (request_type or "", name)
        self.cut_short[key] = self.cut_short.get(key, 0) + count

    def add_lateness(self, source: str, counts: dict[int, int] | Iterable[tuple[int, int]]) -> None:
        """Add lateness histogram counts (ms keys of core.histogram) of one source."""
        self.lateness.setdefault(source, Histogram()).merge(counts)

    def merge(self, other: MetricBook) -> None:
        """Add another book's figures (a worker's part)."""
        for key, row in other.rows.items():
            self.rows.setdefault(key, RowTally()).merge(row)
        for name, answers in other.answers.items():
            self.answers.setdefault(name, AnswerTally()).merge(answers)
        for source, histogram in other.lateness.items():
            self.add_lateness(source, histogram.counts)
        for (kind, name), count in other.cut_short.items():
            self.add_cut_short(kind, name, count)

    def copy(self) -> MetricBook:
        """A snapshot: later additions to this book do not change it."""
        return copy.deepcopy(self)

    def minus(self, before: MetricBook) -> MetricBook:
        """What was filed since ``before`` (an earlier copy of this book): the figures of a window."""
        window = MetricBook()
        window.rows = {key: row.minus(before.rows.get(key, RowTally())) for key, row in self.rows.items()}
        window.answers = {
            name: answers.minus(before.answers.get(name, AnswerTally())) for name, answers in self.answers.items()
        }
        window.lateness = {
            source: histogram_minus(h, before.lateness.get(source, Histogram())) for source, h in self.lateness.items()
        }
        window.cut_short = {key: count - before.cut_short.get(key, 0) for key, count in self.cut_short.items()}
        return window

    def to_message(self) -> dict[str, Any]:
        """A compact, msgpack-friendly form for sending to the master."""
        return {
            "rows": [[kind, name, row.to_message()] for (kind, name), row in self.rows.items()],
            "answers": {name: answers.to_message() for name, answers in self.answers.items()},
            "lateness": {source: list(h.counts.items()) for source, h in self.lateness.items()},
            "cut_short": [[kind, name, count] for (kind, name), count in self.cut_short.items()],
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> MetricBook:
        book = cls()
        book.rows = {(kind, name): RowTally.from_message(row) for kind, name, row in message["rows"]}
        book.answers = {name: AnswerTally.from_message(answers) for name, answers in message["answers"].items()}
        for source, pairs in message["lateness"].items():
            book.add_lateness(source, pairs)
        for kind, name, count in message["cut_short"]:
            book.add_cut_short(kind, name, int(count))
        return book

    def exchange_rows(self, name: str | None = None) -> list[RowTally]:
        """The rows that are exchanges (not timings of one), optionally of one request name."""
        return [
            row
            for (kind, row_name), row in self.rows.items()
            if kind not in EXTRA_ROWS and (name is None or row_name == name)
        ]

    def timing_rows(self, request_type: str, name: str | None = None) -> list[RowTally]:
        """The rows of one request type (e.g. FANOUT), optionally of one request name."""
        return [row for (kind, row_name), row in self.rows.items() if kind == request_type and name in (None, row_name)]
