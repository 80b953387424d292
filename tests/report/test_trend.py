"""Drift and saturation (report/trend.py) on hand-made slices, and the answer that quotes them."""

from __future__ import annotations

from report.trend import drift, saturation
from report.verdict import answer, assessment


def slice_(users: int, rps: float, p50: float | None, p95: float | None = None) -> dict:
    return {"t_s": 0, "users": users, "rps": rps, "p50_ms": p50, "p95_ms": p95 if p95 is not None else p50}


EDGE = slice_(1, 0.1, 5000.0)
"""A partial first or last slice: left out, however odd."""


def test_steady_latency_has_not_drifted() -> None:
    steady = [EDGE, *(slice_(10, 20, 100 + i % 3, 150) for i in range(9)), EDGE]
    reading = drift(steady)
    assert reading is not None and reading["drifted"] is False
    assert reading["p50_ms"]["first_third"] == 101 and reading["p50_ms"]["last_third"] == 101
    fixed = {"totals": {"count": 90, "fail_ratio": 0.0}, "trend": {"drift": reading, "saturation": None}}
    assert answer(fixed).endswith("; latency steady from the first to the last third: p50 101 → 101 ms (+0%)")


def test_latency_growing_by_half_has_drifted() -> None:
    growing = [EDGE, *(slice_(10, 20, p50, p50 * 2) for p50 in (100, 100, 100, 120, 130, 140, 150, 150, 150)), EDGE]
    reading = drift(growing)
    assert reading["p50_ms"] == {"first_third": 100, "last_third": 150, "change": 0.5}
    assert reading["p95_ms"]["change"] == 0.5 and reading["drifted"] is True
    assert drift([EDGE, slice_(1, 1, 10), slice_(1, 1, 10), EDGE]) is None  # too short to say


def test_throughput_that_stops_following_the_users_is_saturation() -> None:
    # 4 → 8 users doubles rps (not saturated yet); 8 → 12 users (1.5 times) adds 2% rps: flat from 8 users.
    ramp = [EDGE, slice_(4, 20.0, 100), slice_(8, 40.0, 100), slice_(12, 40.8, 300), slice_(16, 41.0, 400), EDGE]
    assert saturation(ramp) == {"from_users": 8, "rps": 40.0, "at_users": 12, "rps_then": 40.8}
    keeping_up = [EDGE, slice_(4, 20.0, 100), slice_(8, 40.0, 100), slice_(12, 60.0, 100), EDGE]
    assert saturation(keeping_up) is None


def test_the_answer_quotes_drift_on_a_fixed_load_and_saturation_on_a_ramp() -> None:
    growing = [EDGE, *(slice_(10, 20, p50) for p50 in (100, 100, 100, 150, 150, 150, 200, 200, 200)), EDGE]
    fixed = {"totals": {"count": 10, "fail_ratio": 0.0}, "trend": {"drift": drift(growing), "saturation": None}}
    assert answer(fixed).endswith("latency drifted from the first to the last third: p50 100 → 200 ms (+100%), "
                                  "p95 100 → 200 ms (+100%)")  # fmt: skip
    ramp = [EDGE, slice_(4, 20.0, 100), slice_(8, 40.0, 100), slice_(12, 40.8, 300), EDGE]
    ramped = {
        "shape": {"name": "ramp"},
        "slo": [{"slo": "p95<500", "value": 300.0, "passed": True}],
        "verdict": {"success_rate": 1.0, "assessment": "spare capacity"},
        "trend": {"drift": None, "saturation": saturation(ramp)},
    }
    assert answer(ramped) == (
        "all SLOs pass: p95<500 (300); throughput flat at 40 req/s from 8 users (40.8 req/s at 12 users)"
    )
    assert assessment(ramped) == "at capacity (throughput stopped following the users)"  # never "spare capacity"


def test_lost_group_chat_messages_count_in_the_answer_and_the_assessment() -> None:
    """Every answer came back (success rate 100%), but 4.7% of the broadcasts due never arrived."""
    summary = {
        "totals": {"count": 500, "fail_ratio": 0.0},
        "verdict": {"success_rate": 1.0, "assessment": "spare capacity"},
        "plenary": {"expected": 1290, "delivered": 1229, "lost": 61, "completeness": 0.952713, "duplicates": 2},
    }
    assert answer(summary).endswith("; group chat lost 61 of 1290 messages due (4.7%), 2 duplicated")
    assert assessment(summary) == "adequate"  # 95% delivered reads like a 95% success rate
    summary["plenary"].update(lost=0, delivered=1290, completeness=1.0)
    assert assessment(summary) == "spare capacity"
