"""Keeps Chatswarm's metric book (core/metric_book.py) for the run, merged over workers.

Every request event's exact response time is filed per (request type, name); each streamed answer's record
(StreamRecord) adds its TTFT, ITL, TPOT, E2E, output tokens and whether it met every per-answer SLO; each
audio call's record adds its frames' send lateness. Workers send their part with each stats report and start
afresh; the master adds the parts. The book gives summary.json's ``requests`` and ``totals`` (exchanges only),
the SLO gate's values, and the shapes' windows (plugins/setup/shape_select.py hands them ``book()``).
"""

from __future__ import annotations

from typing import Any

from locust import Events
from locust.runners import WorkerRunner

from core.book_measure import BookMeasure, request_figures, total_figures
from core.metric_book import MetricBook
from core.slo import SLO
from plugins.metrics import arrival_report, audio_report, llm_metrics, plenary_report
from plugins.metrics.merged import MergedOverWorkers
from plugins.output.run_folder import add_section
from plugins.setup.options import configured_slos
from users.audio.audio_metrics import CallRecord
from users.common import pacing, records
from users.common.in_flight import CutShort
from users.llm.stream_metrics import StreamRecord

MESSAGE_KEY = "chatswarm_book"
"""Key of the book's part in a worker's stats report."""


class BookKeeper(MergedOverWorkers):
    """This Environment's metric book: the run's on the master or a local runner, since the last report on a worker."""

    message_key = MESSAGE_KEY

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.book = MetricBook()
        self.goodput_limits: list[SLO] = []

    def listen(self) -> None:
        events = self.environment.events
        events.request.add_listener(self.on_request)
        records.subscribe(self.environment, StreamRecord, self.add_answer)
        records.subscribe(self.environment, CallRecord, self.add_call)
        records.subscribe(self.environment, CutShort, self.add_cut_short)
        self.listen_for_reports()
        events.test_start.add_listener(self.on_test_start)
        events.reset_stats.add_listener(self.reset)

    def on_request(
        self, request_type: str, name: str, response_time: float | None, exception: Any = None, **_kwargs: Any
    ) -> None:
        self.book.add_request(request_type, name, response_time, exception is not None)

    def add_answer(self, record: StreamRecord) -> None:
        self.book.add_answer(
            record.name,
            failed=bool(record.error),
            good=llm_metrics.is_good(record, self.goodput_limits),
            ttft_ms=record.ttft_ms,
            itl_ms=record.itl_ms,
            tpot_ms=record.tpot_ms,
            e2e_ms=record.e2e_ms,
            output_tokens=record.output_tokens,
        )

    def add_call(self, record: CallRecord) -> None:
        self.book.add_lateness("audio", record.lateness.counts)

    def add_cut_short(self, record: CutShort) -> None:
        self.book.add_cut_short(record.request_type, record.name)

    def take_message(self) -> dict[str, Any] | None:
        taken, self.book = self.book, MetricBook()
        return None if taken.empty else taken.to_message()

    def merge_message(self, message: dict[str, Any], client_id: str) -> None:
        self.book.merge(MetricBook.from_message(message))

    def on_test_start(self, **_kwargs: Any) -> None:
        if self.environment.parsed_options is not None:  # checked by preflight at init
            self.goodput_limits = llm_metrics.goodput_limits(configured_slos(self.environment.parsed_options))
        if not isinstance(self.environment.runner, WorkerRunner):
            self.book = MetricBook()

    def reset(self, **_kwargs: Any) -> None:
        self.book = MetricBook()


def keeper(environment: Any) -> BookKeeper:
    """This Environment's book keeper."""
    return records.state(environment, BookKeeper, lambda: BookKeeper(environment))


def run_measure(environment: Any, duration_s: float) -> BookMeasure:
    """measure(metric, name) over the whole run: the book, arrival lateness, plenary delivery, call setup."""
    book = keeper(environment).book.copy()
    arrivals = records.existing(environment, arrival_report.ArrivalReport)
    if arrivals is not None:
        arrivals.collect(pacing.current(environment))  # a local runner's counts still on its pacer
        if arrivals.merged.scheduled:
            book.add_lateness("arrival", arrivals.merged.to_message()["lateness"])
    return BookMeasure(book, duration_s, plenary_values(environment) | audio_report.run_values(environment))


def plenary_values(environment: Any) -> dict[str, float | None]:
    """Plenary delivery as SLO ratios of the expected receptions: lost, completeness, duplicates."""
    section = plenary_report.plenary_section(environment, 0.0)
    if not section or not section["expected"]:
        return {}
    expected = section["expected"]
    return {
        "lost": section["lost"] / expected,
        "completeness": section["delivered"] / expected,
        "duplicates": section["duplicates"] / expected,
    }


def requests_section(environment: Any, duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``requests``: each row's exact figures (percentiles of the successful requests)."""
    return request_figures(keeper(environment).book, duration_s)


def totals_section(environment: Any, duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``totals``: exchanges only (TTFT, FANOUT and TTFA rows time an exchange)."""
    return total_figures(keeper(environment).book, duration_s)


def _on_init(environment: Any, **_kwargs: Any) -> None:
    keeper(environment).listen()


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    add_section("requests", requests_section)
    add_section("totals", totals_section)
