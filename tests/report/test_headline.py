"""The end-of-run headline lines per protocol (report/verdict.py headline) and the summary screen around them, from
hand-made summaries."""

from __future__ import annotations

from pathlib import Path

from report.console import summary_screen
from report.verdict import answer, headline


def test_a_voice_run_shows_ttfa_lateness_and_how_the_callers_fared() -> None:
    audio = {
        "ttfa_ms": {"p50": 251.0, "p95": 270.4, "p99": 296.0},
        "send_lateness_ms": {"p50": 0.4, "p95": 2.25, "p99": 6.0},
        "calls": {"started": 40, "failed": 1, "abandoned": 3},
        "setup": {"tried": 40, "set_up": 37, "success_rate": 0.925},
        "dead_air": {"threshold_ms": 2000.0, "silences_over_threshold": 4},
        "barge_in": {"latency_ms": {"p50": 150.2, "p95": 151.0, "p99": 163.0}, "bot_did_not_stop": 2},
    }
    assert headline({"audio": audio}) == [
        "audio    TTFA p50/p95/p99 251/270/296 ms  send lateness p50/p95/p99 0.4/2.2/6.0 ms  calls 40, failed 1",
        "callers  set up 92.5%, abandoned 3, dead air 4 over 2,000 ms"
        "  barge-in stop p50/p95/p99 150/151/163 ms, bot did not stop 2",
    ]


def test_a_voice_run_without_barge_in_or_calls_set_up_says_so() -> None:
    audio = {"calls": {"started": 0}, "setup": {"tried": 0, "success_rate": None}, "dead_air": {"threshold_ms": 500}}
    assert headline({"audio": audio})[1] == "callers  set up -, abandoned 0, dead air 0 over 500 ms"


def test_the_summary_screen_says_the_failure_ratio_once_where_the_answer_does_not() -> None:
    totals = {"count": 57, "failures": 2, "fail_ratio": 2 / 57}
    unjudged = {"totals": totals}  # no --slo: the answer is the failure ratio
    unjudged["verdict"] = {"answer": answer(unjudged)}
    shown = [line for line in summary_screen(unjudged, Path()).splitlines() if "3.51%" in line]
    assert shown == ["ANSWER: failure ratio 3.51% over 57 requests (no --slo given)"] * 2  # first and last
    judged = {"totals": totals, "slo": [{"slo": "p95<1500", "value": 495.0, "passed": True}]}
    judged["verdict"] = {"answer": answer(judged)}
    lines = summary_screen(judged, Path()).splitlines()
    assert "failure ratio 3.51%" in lines and "ANSWER: all SLOs pass: p95<1500 (495)" in lines  # its own line
