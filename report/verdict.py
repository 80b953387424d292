"""The answer to the test's question, in one line, and the protocol's headline figures: read from summary.json.

Shown first everywhere (the console's last screen, the top of index.html, the log's last lines, and
summary.json → ``verdict`` → ``answer``):

- breakpoint: "sustains N users (R req/s) within <SLOs>; breaks at M users: <which SLO, value>";
- pid: "holds <metric> at <target> ms with N users, R req/s" (or that it never settled);
- arrival: "held R of the requested Q req/s; D dropped, L late";
- any other load: each SLO's verdict, or the failure ratio when none was given; then, for a fixed load,
  whether latency drifted between the first and last third, and for a load that adds users, whether
  throughput stopped following them (report/trend.py).

A pure function of the summary, so scripts/report.py and a reader of an old run folder get the same words.
"""

from __future__ import annotations

from typing import Any

from report import trend

SUCCESS_ASSESSMENTS = ((1.0, "spare capacity"), (0.8, "adequate"), (0.7, "at capacity"), (0.0, "overloaded"))
"""How the older call-assistant guide read a run's success rate: 100% spare capacity, over 80% adequate,
70-80% at capacity, under 70% overloaded."""


def assess_success_rate(success_rate: float) -> str:
    """The guide's reading of a success rate (0..1)."""
    for floor, reading in SUCCESS_ASSESSMENTS:
        if success_rate >= floor and (floor < 1.0 or success_rate == 1.0):
            return reading
    return "overloaded"


GROWING_SHAPES = ("ramp", "stages", "wave", "burst", "stability")
"""Shapes that add users over time: throughput that stops following them is saturation."""


def answer(summary: dict[str, Any]) -> str:
    """The one-line answer of a run."""
    shape = summary.get("shape") or {}
    if shape.get("name") == "breakpoint":
        return _breakpoint(shape)
    if shape.get("name") == "pid":
        return _pid(shape)
    parts = []
    arrival = summary.get("arrival")
    if arrival:
        parts.append(_arrival(arrival))
    parts.append(_slos(summary))
    plenary = summary.get("plenary")
    if plenary and plenary.get("expected"):
        parts.append(
            f"group chat lost {plenary.get('lost', 0)} of {plenary['expected']} messages due "
            f"({1 - (plenary.get('completeness') or 0):.1%}), {plenary.get('duplicates', 0)} duplicated"
        )
    readings = summary.get("trend") or {}
    if readings.get("saturation") and shape.get("name") in GROWING_SHAPES:
        parts.append(trend.describe_saturation(readings["saturation"]))
    elif readings.get("drift") and not shape:
        parts.append(trend.describe_drift(readings["drift"]))
    return "; ".join(parts)


def assessment(summary: dict[str, Any]) -> str | None:
    """The success-rate reading, unless the test found the knee (a run that broke or stopped gaining throughput is
    at capacity); a group chat's delivery completeness counts like the success rate."""
    judged = summary.get("verdict") or {}
    reading = judged.get("assessment")
    completeness = (summary.get("plenary") or {}).get("completeness")
    if reading is not None and completeness is not None:
        reading = assess_success_rate(min(judged.get("success_rate", 1.0), completeness))
    shape = summary.get("shape") or {}
    if shape.get("name") == "breakpoint" and str(shape.get("reason", "")).startswith("breach at "):
        return "at capacity (the breakpoint test found where it breaks)"
    if (summary.get("trend") or {}).get("saturation") and shape.get("name") in GROWING_SHAPES:
        return "at capacity (throughput stopped following the users)"
    return reading


def _breakpoint(shape: dict[str, Any]) -> str:
    slos = ", ".join(shape.get("slos") or []) or "the SLOs"
    users = shape.get("max_sustainable_users")
    reason = shape.get("reason") or ""
    if users is None:
        return f"sustains no step within {slos}: {reason}"
    sustained = f"sustains {users} users ({shape.get('max_sustainable_rps') or 0:.1f} req/s) within {slos}"
    if reason.startswith("breach at "):
        return f"{sustained}; breaks at {reason[len('breach at ') :]}"
    return f"{sustained}; {reason}"


def _pid(shape: dict[str, Any]) -> str:
    metric, target = shape.get("latency_metric", "latency"), shape.get("target_latency_ms")
    if not shape.get("settled"):
        return f"never settled on {metric} {target:g} ms: see the trace (shape.trace)"
    rps = shape.get("settled_rps") or 0
    return f"holds {metric} at {target:g} ms with {shape.get('settled_users')} users, {rps:.1f} req/s"


def _arrival(arrival: dict[str, Any]) -> str:
    achieved = arrival.get("achieved_rate_per_s")
    held = "nothing" if achieved is None else f"{achieved:g}"
    return (
        f"held {held} of the requested {arrival.get('target_rate_per_s', 0):g} req/s; "
        f"{arrival.get('dropped', 0)} starts dropped, {arrival.get('late', 0)} late"
    )


def _slos(summary: dict[str, Any]) -> str:
    results = summary.get("slo") or []
    if not results:
        totals = summary.get("totals") or {}
        return (
            f"failure ratio {totals.get('fail_ratio', 0):.2%} over {totals.get('count', 0)} requests (no --slo given)"
        )
    failed = [r for r in results if not r.get("passed")]
    if not failed:
        return "all SLOs pass: " + ", ".join(_judged(r) for r in results)
    return f"{len(failed)} of {len(results)} SLOs breached: " + ", ".join(_judged(r) for r in failed)


def _judged(result: dict[str, Any]) -> str:
    value = result.get("value")
    return f"{result['slo']} ({'no data' if value is None else _number(value)})"


def _number(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def headline(summary: dict[str, Any]) -> list[str]:
    """The figures a reader of each protocol looks for first, one line per protocol that ran."""
    lines = []
    llm = summary.get("llm")
    if llm:
        latencies = "  ".join(
            _percentiles(name.upper(), llm.get(f"{name}_ms") or {}) for name in ("ttft", "itl", "tpot")
        )
        rates = f"output {llm.get('output_tokens_per_s') or 0:,.1f} tokens/s"
        if llm.get("goodput_slos") and llm.get("goodput_rps") is not None:
            rates += f", goodput {llm['goodput_rps']:,.2f} answers/s"
        lines.append(f"LLM      {latencies}  {rates}")
    audio = summary.get("audio")
    if audio:
        calls = audio.get("calls") or {}
        lines.append(
            f"audio    {_percentiles('TTFA', audio.get('ttfa_ms') or {})}  "
            f"{_percentiles('send lateness', audio.get('send_lateness_ms') or {})}  "
            f"calls {calls.get('started', 0)}, failed {calls.get('failed', 0)}"
        )
        lines.append(_callers(audio))
    plenary = summary.get("plenary")
    if plenary:
        fanout = (plenary.get("fanout_ms") or {}).get("peers") or (plenary.get("fanout_ms") or {}).get("echo") or {}
        lines.append(
            f"plenary  fan-out p50 {_ms(fanout.get('p50'))} p99 {_ms(fanout.get('p99'))} ms  "
            f"lost {plenary.get('lost', 0)} of {plenary.get('expected', 0)}, duplicated {plenary.get('duplicates', 0)}"
        )
    return lines


def _callers(audio: dict[str, Any]) -> str:
    """How the callers fared: calls set up, hung up out of patience, dead air, and barge-in when callers spoke over."""
    setup = (audio.get("setup") or {}).get("success_rate")
    dead_air = audio.get("dead_air") or {}
    line = (
        f"callers  set up {'-' if setup is None else f'{setup:.1%}'}, "
        f"abandoned {(audio.get('calls') or {}).get('abandoned', 0)}, "
        f"dead air {dead_air.get('silences_over_threshold', 0)} over {_ms(dead_air.get('threshold_ms'))} ms"
    )
    barge_in = audio.get("barge_in")
    if barge_in:
        line += (
            f"  barge-in {_percentiles('stop', barge_in.get('latency_ms') or {})}, "
            f"bot did not stop {barge_in.get('bot_did_not_stop', 0)}"
        )
    return line


def _percentiles(label: str, figures: dict[str, Any]) -> str:
    return f"{label} p50/p95/p99 {_ms(figures.get('p50'))}/{_ms(figures.get('p95'))}/{_ms(figures.get('p99'))} ms"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
