"""The Chatswarm tab's rows for the shapes' outcomes: breakpoint steps and the last passing one, PID's figures."""

from __future__ import annotations

from typing import Any

from plugins.web.tab import shape_rows, shown
from shapes.base import ChatswarmShape


class Outcome(ChatswarmShape):
    """A shape whose outcome is given (the tab reads only ``outcome()``)."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__()
        self.options, self.given = object(), outcome

    def outcome(self) -> dict[str, Any]:
        return self.given

    def tick(self) -> None:
        return None


def test_breakpoint_steps_and_the_last_passing_one() -> None:
    steps = [
        {"users": 2, "rps": 7.99, "p95_ms": 52.6, "passed": True},
        {"users": 4, "rps": 15.1234, "p95_ms": 2400.0, "passed": False},
    ]
    outcome = {"steps": steps, "max_sustainable_users": 2, "max_sustainable_rps": 7.99, "reason": "p95<2000 broke"}
    running = list(shape_rows(Outcome(outcome), running=True))
    assert [r["figure"] for r in running] == ["2 users", "4 users", "last passing step"]
    assert running[1] == {"part": "breakpoint step 2", "figure": "4 users", "value": "15.12 req/s, p95 2400 ms",
                          "verdict": "fail"}  # fmt: skip
    assert running[2]["value"] == "2 users, 7.99 req/s" and "so far" in running[2]["verdict"]
    assert list(shape_rows(Outcome(outcome), running=False))[2]["verdict"] == "p95<2000 broke"


def test_pid_target_measured_and_users() -> None:
    trace = [{"users": 8, "measured_ms": 900.0}, {"users": 12, "measured_ms": 1012.5}]
    outcome = {"target_latency_ms": 1000.0, "latency_metric": "p95", "settled": False, "settled_users": None}
    rows = list(shape_rows(Outcome({**outcome, "trace": trace}), running=True))
    assert [(r["figure"], r["value"], r["verdict"]) for r in rows] == [
        ("target p95", "1000 ms", ""),
        ("measured", "1012 ms", ""),  # 4 significant digits
        ("users", "12", "settling"),
    ]
    assert list(shape_rows(None, running=True)) == [] and shown(None) == "—"
