"""The live "Chatswarm" tab of the web UI: the verdict forming while the test runs.

Each SLO's current value and whether it holds; the breakpoint's steps so far and the last passing one; the
PID's target, measured value and users; each protocol's headline figures; whether the generator can be
trusted. Every figure is read from the objects the run folder reads (the metric book, the per-Environment
plugin state), which the master merges over its workers, so at a test's end the tab and summary.json agree.
The tab is Locust's public extension point (``extended_tabs``/``extended_tables`` in ``template_args``, rows in
``extended_stats`` of /stats/requests), like the "LLM metrics" tab.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from flask import request
from locust import Events

from core.redaction import redact
from core.slo import evaluate
from plugins.metrics import audio_report, book_keeper, plenary_report, ws_report
from plugins.metrics.llm_metrics import metrics as llm_metrics
from plugins.output import run_folder
from plugins.output.trust import distrust_reasons
from plugins.setup.options import configured_slos
from plugins.web.test_runs import LAST_TEST_URL, last_test
from shapes.base import ChatswarmShape
from users.common import records

logger = logging.getLogger("chatswarm")

TAB_KEY = "chatswarm"
COLUMNS = [
    {"key": "part", "title": "Part"},
    {"key": "figure", "title": "Figure"},
    {"key": "value", "title": "Value"},
    {"key": "verdict", "title": "Verdict"},
]

Row = dict[str, str]


def shown(value: Any, unit: str = "") -> str:
    """A figure as the tab shows it: up to 4 significant digits, '—' for no data."""
    if value is None:
        return "—"
    return f"{value:.4g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def row(part: str, figure: str, value: Any = "", verdict: str = "", unit: str = "") -> Row:
    return {"part": part, "figure": figure, "value": shown(value, unit) if value != "" else "", "verdict": verdict}


def slo_rows(environment: Any, duration_s: float) -> Iterator[Row]:
    """Each --slo on the test so far (the gate's measure: the metric book over the whole test)."""
    slos = configured_slos(environment.parsed_options)
    for result in evaluate(slos, book_keeper.run_measure(environment, duration_s)) if slos else []:
        verdict = "no data" if result.value is None else ("holds" if result.passed else "breached")
        yield row("SLO", str(result.slo), result.value, verdict)


def shape_rows(shape: Any, running: bool) -> Iterator[Row]:
    """Breakpoint: every step judged so far and the last passing one; PID: target, measured, users."""
    if not isinstance(shape, ChatswarmShape) or shape.options is None:
        return
    outcome = shape.outcome()
    for number, step in enumerate(outcome.get("steps", []), 1):
        figures = f"{shown(step['rps'])} req/s, p95 {shown(step['p95_ms'])} ms"
        yield row(f"breakpoint step {number}", f"{step['users']} users", figures, "pass" if step["passed"] else "fail")
    if "max_sustainable_users" in outcome:
        users, rps = outcome["max_sustainable_users"], outcome["max_sustainable_rps"]
        verdict = "so far (the test runs)" if running else outcome["reason"]
        yield row("breakpoint", "last passing step", f"{shown(users)} users, {shown(rps)} req/s", verdict)
    if "target_latency_ms" in outcome:
        last = outcome["trace"][-1] if outcome["trace"] else {}
        yield row("pid", f"target {outcome['latency_metric']}", outcome["target_latency_ms"], unit=" ms")
        yield row("pid", "measured", last.get("measured_ms"), unit=" ms")
        settled = "settled" if outcome["settled"] else "settling"
        yield row("pid", "users", outcome["settled_users"] or last.get("users"), settled)


def protocol_rows(environment: Any, duration_s: float) -> Iterator[Row]:
    """The headline figures of each protocol that ran."""
    llm = llm_metrics(environment).stats
    if llm.requests:
        section = llm.summary(duration_s)
        yield row("LLM", "TTFT p95", section["ttft_ms"]["p95"], unit=" ms")
        yield row("LLM", "ITL p95", section["itl_ms"]["p95"], unit=" ms")
        yield row("LLM", "output tokens/s", section["output_tokens_per_s"])
    audio = records.existing(environment, audio_report.AudioReport)
    if audio is not None and audio.stats.counts["calls"]:
        section = audio.stats.summary(duration_s)
        late = section["send_lateness_ms"]["p99"]
        behind = late is not None and late > audio_report.LATENESS_WARNING_MS
        yield row("audio", "TTFA p95", section["ttfa_ms"]["p95"], unit=" ms")
        yield row("audio", "send lateness p99", late, "behind real time" if behind else "on time", " ms")
    plenary = plenary_report.plenary_section(environment, duration_s)
    if plenary is not None:
        yield row("plenary", "fan-out p95", plenary["fanout_ms"].get("p95"), unit=" ms")
        yield row("plenary", "lost", plenary["lost"], f"of {plenary['expected']} expected")
    ws = records.existing(environment, ws_report.WebSocketReport)
    if ws is not None and ws.timeline.events:
        totals = ws.timeline.totals()
        for name in sorted(key for key in totals if key.endswith("_error_rate")):
            yield row("WebSocket", name.replace("_", " "), totals[name])


def trust_rows(environment: Any) -> Iterator[Row]:
    """The generator's CPU and event-loop lag, with a warning once its timings cannot be trusted."""
    reasons, figures = distrust_reasons(environment)
    verdict = "NOT TRUSTWORTHY: " + "; ".join(reasons) if reasons else "trustworthy"
    yield row("generator", "peak CPU", figures["peak_cpu_percent"], verdict, " %")
    yield row("generator", "loop lag p99", figures["loop_lag_ms"]["p99"], verdict, " ms")


def tab_rows(environment: Any) -> list[Row]:
    """Every row of the tab, now."""
    folder = run_folder.current(environment)
    duration = folder.duration_s if folder else 0.0
    running = folder is not None and folder.started_at is not None and folder.stopped_at is None
    rows = [*slo_rows(environment, duration), *shape_rows(environment.shape_class, running)]
    rows += [*protocol_rows(environment, duration), *trust_rows(environment)]
    last = last_test(environment)
    if last is not None:
        rows.append(row("report", "Report of the last test", str(last), LAST_TEST_URL))
    return rows


def safe_rows(environment: Any) -> list[Row]:
    """The tab's rows; a figure that cannot be read is one row saying so, never a broken stats page."""
    try:
        return tab_rows(environment)
    except Exception as error:  # Locust's own statistics ride in the same response
        logger.exception("Chatswarm tab")
        return [row("tab", "could not read the figures", redact(str(error))[:200], "see the log")]


def _on_init(environment: Any, **_kwargs: Any) -> None:
    web_ui = environment.web_ui
    if web_ui is None:
        return
    web_ui.template_args.setdefault("extended_tabs", []).append({"title": "Chatswarm", "key": TAB_KEY})
    web_ui.template_args.setdefault("extended_tables", []).append({"key": TAB_KEY, "structure": COLUMNS})

    @web_ui.app.after_request
    def _add_rows(response: Any) -> Any:
        if request.path.endswith("/stats/requests") and response.is_json:
            extended = [*response.json.get("extended_stats", []), {"key": TAB_KEY, "data": safe_rows(environment)}]
            response.set_data(json.dumps({**response.json, "extended_stats": extended}))
        return response


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, after the metrics plugins)."""
    events.init.add_listener(_on_init)
