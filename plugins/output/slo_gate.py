"""The SLO gate: at the end of a run, every --slo is judged on the whole run, printed PASS/FAIL, written
to summary.json (``slo``), and a breach sets exit code 3, so a CI pipeline can fail on broken promises.

Latency, failure and rate metrics come from Locust's stats (the plain request rows, or the TTFT, E2E,
FANOUT and TTFA rows for those families); ITL, TPOT, tokens/s and goodput from the LLM metrics plugin.
With the breakpoint shape the SLOs judge each step instead, so the gate stands aside.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import Events
from locust.runners import WorkerRunner

from core.slo import SLOResult, evaluate
from plugins.metrics import llm_metrics
from plugins.output import run_folder
from plugins.setup.options import configured_slos
from shapes.measure import StatsSnapshot, WindowMeasure, snapshot
from shapes.options import selected_shape
from users.common import records
from users.llm.stream_metrics import StreamStats

logger = logging.getLogger("chatswarm")

SLO_BREACH_EXIT_CODE = 3

SUCCESS_ASSESSMENTS = ((1.0, "spare capacity"), (0.8, "adequate"), (0.7, "at capacity"), (0.0, "overloaded"))
"""How the older call-assistant guide read a run's success rate: 100% spare capacity, over 80% adequate,
70-80% at capacity, under 70% overloaded."""


class Verdicts:
    """This Environment's SLO verdicts, judged once at the end of the run (None before)."""

    def __init__(self) -> None:
        self.results: list[SLOResult] | None = None


def assess_success_rate(success_rate: float) -> str:
    """The guide's reading of a success rate (0..1)."""
    for floor, assessment in SUCCESS_ASSESSMENTS:
        if success_rate >= floor and (floor < 1.0 or success_rate == 1.0):
            return assessment
    return "overloaded"


def whole_run_measure(stats: Any, llm: StreamStats, duration_s: float) -> Any:
    """measure(metric, name) over the whole run: Locust's rows, and ``llm`` for the LLM-only metrics."""
    end = snapshot(stats, duration_s)
    locust_rows = WindowMeasure(StatsSnapshot(0.0, {}), end)

    def measure(metric: str, name: str | None) -> float | None:
        family, _, statistic = metric.partition("_")
        if family in ("itl", "tpot") and name is None:
            histogram = llm.histograms[f"{family}_ms"]
            return histogram.mean() if statistic == "avg" else histogram.percentile(float(statistic[1:]))
        if metric == "tokens_per_s":
            return llm.output_tokens / duration_s if llm.requests and duration_s > 0 else None
        if metric == "goodput":
            return llm.good / duration_s if llm.requests and duration_s > 0 else None
        return locust_rows(metric, name)

    return measure


def judge(environment: Any) -> list[SLOResult]:
    """Evaluate every --slo on the whole run."""
    slos = configured_slos(environment.parsed_options)
    if not slos or selected_shape(environment.parsed_options) == "breakpoint":
        return []
    folder = run_folder.current(environment)
    duration = folder.duration_s if folder else 0.0
    llm = llm_metrics.metrics(environment).stats
    return evaluate(slos, whole_run_measure(environment.runner.stats, llm, duration))


def results(environment: Any) -> list[SLOResult]:
    """This run's verdicts, judged once at its end."""
    verdicts = records.state(environment, Verdicts)
    if verdicts.results is None:
        verdicts.results = judge(environment)
    return verdicts.results


def slo_section(environment: Any, _duration_s: float) -> list[dict[str, Any]] | None:
    """summary.json's ``slo`` section: each threshold with its value and verdict."""
    verdicts = results(environment)
    if not verdicts:
        return None
    return [{"slo": str(r.slo), "value": r.value, "passed": r.passed} for r in verdicts]


def verdict_section(environment: Any, _duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``verdict``: the success rate read the way the older call-assistant guide did."""
    total = environment.runner.stats.total
    if not total.num_requests:
        return None
    success_rate = 1 - total.num_failures / total.num_requests
    return {"success_rate": round(success_rate, 4), "assessment": assess_success_rate(success_rate)}


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    records.state(environment, Verdicts).results = None


def _on_quitting(environment: Any, **_kwargs: Any) -> None:
    if environment.parsed_options is None or isinstance(environment.runner, WorkerRunner):
        return
    verdicts = results(environment)
    for result in verdicts:
        logger.info("SLO %s", result.describe())
    if any(result.breached for result in verdicts):
        logger.warning("SLO breached: exit code %d", SLO_BREACH_EXIT_CODE)
        environment.process_exit_code = SLO_BREACH_EXIT_CODE


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.test_start.add_listener(_on_test_start)
    events.quitting.add_listener(_on_quitting)
    run_folder.add_section("slo", slo_section)
    run_folder.add_section("verdict", verdict_section)
