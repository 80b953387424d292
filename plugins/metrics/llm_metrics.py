"""LLM metrics across the whole run: TTFT, ITL, TPOT, E2E, tokens/s, goodput, merged over workers.

Streaming users attach a StreamRecord to each E2E request row (users/common/records.py). Every process adds
its records to a StreamStats; workers send theirs to the master with each stats report (every 3 s) and start afresh,
and the master merges the histograms, so percentiles are computed over all samples, never averaged.
The result is the ``llm`` section of summary.json and the "LLM metrics" table of the web UI.
"""

from __future__ import annotations

import json
from typing import Any

from flask import request
from locust import Events
from locust.runners import WorkerRunner

from core.slo import SLO
from plugins.metrics.merged import MergedOverWorkers
from plugins.output.run_folder import add_section
from plugins.setup.options import configured_slos
from users.common import records
from users.llm.stream_metrics import LATENCY_METRICS, PERCENTILES, StreamRecord, StreamStats

MESSAGE_KEY = "chatswarm_llm"
"""Key of the LLM figures in a worker's stats report."""

PER_REQUEST_LIMITS = {"ttft": "ttft_ms", "tpot": "tpot_ms", "e2e": "e2e_ms"}
"""SLO families that a single answer can meet or miss, and the record attribute each compares."""


class LlmMetrics(MergedOverWorkers):
    """This Environment's LLM figures: the run's totals on the master or a local runner, since the last report
    on a worker."""

    message_key = MESSAGE_KEY

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.stats = StreamStats()
        self.goodput_limits: list[SLO] = []

    def listen(self) -> None:
        events = self.environment.events
        records.subscribe(self.environment, StreamRecord, self.add)
        self.listen_for_reports()
        events.test_start.add_listener(self.on_test_start)
        events.reset_stats.add_listener(self.reset)

    def add(self, record: StreamRecord) -> None:
        self.stats.add(record, good=not record.error and is_good(record, self.goodput_limits))

    def take_message(self) -> dict[str, Any] | None:
        taken, self.stats = self.stats, StreamStats()
        return taken.to_message() if taken.requests else None

    def merge_message(self, message: dict[str, Any], client_id: str) -> None:
        self.stats.merge_message(message)

    def on_test_start(self, **_kwargs: Any) -> None:
        if self.environment.parsed_options is not None:  # checked by preflight at init
            self.goodput_limits = goodput_limits(configured_slos(self.environment.parsed_options))
        if not isinstance(self.environment.runner, WorkerRunner):
            self.stats = StreamStats()

    def reset(self, **_kwargs: Any) -> None:
        self.stats = StreamStats()


def metrics(environment: Any) -> LlmMetrics:
    """This Environment's LLM figures."""
    return records.state(environment, LlmMetrics, lambda: LlmMetrics(environment))


def is_good(record: StreamRecord, limits: list[SLO]) -> bool:
    """Whether an answer met every per-request SLO (TTFT, TPOT, E2E thresholds given with --slo)."""
    for slo in limits:
        if slo.name is not None and slo.name != record.name:
            continue
        value = getattr(record, PER_REQUEST_LIMITS[slo.metric.split("_", 1)[0]])
        if value is not None and not slo.passes(value):
            return False
    return True


def goodput_limits(slos: list[SLO]) -> list[SLO]:
    """The SLOs that apply to single answers: thresholds on ttft_*, tpot_* and e2e_*."""
    return [slo for slo in slos if slo.metric.split("_", 1)[0] in PER_REQUEST_LIMITS]


def llm_section(environment: Any, duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``llm`` section, when any answer was streamed."""
    figures = metrics(environment)
    if not figures.stats.requests:
        return None
    section = figures.stats.summary(duration_s)
    section["goodput_slos"] = [str(slo) for slo in figures.goodput_limits]
    return section


def web_rows(stats: StreamStats) -> list[dict[str, Any]]:
    """Rows of the web UI's LLM table: one per metric, with count, mean and percentiles."""
    rows = []
    for name in LATENCY_METRICS:
        figures = stats.histograms[name].summary()
        rows.append({"metric": name, **{k: "" if v is None else v for k, v in figures.items()}})
    return rows


def _on_init(environment: Any, **_kwargs: Any) -> None:
    metrics(environment).listen()
    if environment.web_ui:
        _extend_web_ui(environment)


def _extend_web_ui(environment: Any) -> None:
    web_ui = environment.web_ui
    columns = [{"key": "metric", "title": "Metric"}, {"key": "count", "title": "Samples"}]
    columns += [{"key": "mean", "title": "Mean"}]
    columns += [{"key": f"p{p}", "title": f"p{p}"} for p in PERCENTILES]
    web_ui.template_args.setdefault("extended_tabs", []).append({"title": "LLM metrics", "key": "llm-metrics"})
    web_ui.template_args.setdefault("extended_tables", []).append({"key": "llm-metrics", "structure": columns})

    @web_ui.app.after_request
    def _add_llm_rows(response: Any) -> Any:
        if request.path.endswith("/stats/requests") and response.is_json:
            extended = [*response.json.get("extended_stats", [])]  # other tabs' rows (plugins/web/tab.py)
            extended.append({"key": "llm-metrics", "data": web_rows(metrics(environment).stats)})
            response.set_data(json.dumps({**response.json, "extended_stats": extended}))
        return response


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    add_section("llm", llm_section)
