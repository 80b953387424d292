"""The SLO gate: at the end of a run, every --slo is judged on the whole run, printed PASS/FAIL, written
to summary.json (``slo``), and a breach sets exit code 3, so a CI pipeline can fail on broken promises.

Every value comes from the run's metric book (plugins/metrics/book_keeper.py: exact histograms of successful
exchanges and answers, the same figures as summary.json), plenary delivery and arrival lateness from their
reports. An SLO with no data is a breach unless written optional (``itl_p95<50?``). With the breakpoint shape
the SLOs judge each step instead, so the gate stands aside.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import Events
from locust.runners import WorkerRunner

from core.book_measure import total_figures
from core.slo import SLOResult, evaluate
from plugins.metrics import book_keeper
from plugins.output import run_folder
from plugins.setup.options import configured_slos
from report.verdict import assess_success_rate
from shapes.options import selected_shape
from users.common import records

logger = logging.getLogger("chatswarm")

SLO_BREACH_EXIT_CODE = 3


class Verdicts:
    """This Environment's SLO verdicts, judged once at the end of the run (None before)."""

    def __init__(self) -> None:
        self.results: list[SLOResult] | None = None


def judge(environment: Any) -> list[SLOResult]:
    """Evaluate every --slo on the whole run."""
    slos = configured_slos(environment.parsed_options)
    if not slos or selected_shape(environment.parsed_options) == "breakpoint":
        return []
    folder = run_folder.current(environment)
    duration = folder.duration_s if folder else 0.0
    return evaluate(slos, book_keeper.run_measure(environment, duration))


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
    """summary.json's ``verdict``: the exchanges' success rate read the way the older call-assistant guide did."""
    total = total_figures(book_keeper.keeper(environment).book, 0.0)
    if not total["count"]:
        return None
    success_rate = 1 - float(total["fail_ratio"] or 0.0)
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
