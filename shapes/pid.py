"""The PID shape: regulate users so a latency statistic holds --target-latency, for --run-time; its outcome
is the operating point the target settled at."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from core.book_measure import BookSnapshot, window_measure
from core.errors import InputError
from core.settings import Settings, setting
from core.slo import is_latency_metric, parse_slos
from shapes.base import ChatswarmShape, UserCounts, required_run_time
from shapes.controllers.pid import PIDController

MAX_PID_SPAWN_RATE = 100
"""The PID shape reaches a new user count within a second, up to this many users per second."""


@dataclass(frozen=True)
class PIDSettings(Settings):
    """The PID shape's own options (it also reads --min-users, --max-users, --start-users and --run-time)."""

    target_latency: float = setting(1000.0, "pid: latency (ms) to hold", web_ui=True)
    latency_percentile: str = setting("p95", "pid: statistic to hold, e.g. p95, p50, ttft_p95", web_ui=True)
    control_window: float = setting(10.0, "pid: seconds between decisions", web_ui=True)
    max_fail_ratio: float = setting(0.05, "pid: failure ratio that makes it back off", web_ui=True)

    def check(self) -> None:
        """Named as the user typed them (the controller's own checks cannot)."""
        if self.target_latency <= 0:
            raise InputError(f"--target-latency: must be greater than 0 ms, got {self.target_latency:g}")
        if not is_latency_metric(self.latency_percentile):
            raise InputError(
                f"--latency-percentile: {self.latency_percentile!r} is not a latency statistic such as p95, p50 "
                "or ttft_p95"
            )
        if not 0 < self.max_fail_ratio <= 1:
            raise InputError(
                f"--max-fail-ratio: must be a ratio above 0 and at most 1 (0.05 = 5%), got {self.max_fail_ratio:g}"
            )
        if self.control_window < 3:
            raise InputError("--control-window: must be 3 seconds or more (Locust workers report every 3 s)")


def check_user_range(counts: UserCounts) -> None:
    """The users the controller may choose between, named as the user typed them."""
    low, high = counts.min_users, counts.max_users
    if not 1 <= low <= high:
        raise InputError(f"--min-users/--max-users: need 1 <= --min-users ({low}) <= --max-users ({high})")


class PIDShape(ChatswarmShape):
    """Regulate users to hold --target-latency on --latency-percentile, for --run-time."""

    abstract = True
    name = "pid"
    settings_class = PIDSettings

    def configure(self, options: Any) -> None:
        counts, pid = UserCounts.read(options), PIDSettings.read(options)
        check_user_range(counts)
        self.metric = pid.latency_percentile
        self.run_time = required_run_time(options, self.name)
        self.window_s = pid.control_window
        parse_slos([f"{self.metric}<1"])  # the metric must be one the SLO language knows
        self.controller = PIDController(
            target_ms=pid.target_latency,
            min_users=counts.min_users,
            max_users=counts.max_users,
            start_users=counts.start_users or None,
            window_s=self.window_s,
            max_fail_ratio=pid.max_fail_ratio,
        )
        self.window_start: BookSnapshot | None = None

    def tick(self) -> tuple[int, float] | None:
        if self.get_run_time() >= self.run_time:
            return None
        now = time.monotonic()
        if self.window_start is None:
            self.window_start = self.snapshot(now)
            return self.controller.start(now), MAX_PID_SPAWN_RATE
        if now - self.window_start.time >= self.window_s:
            end = self.snapshot(now)
            measure = window_measure(self.window_start, end)
            self.controller.update(
                now,
                measure(self.metric),
                measured_at=now,
                measured_since=self.window_start.time,
                fail_ratio=measure("fail_ratio") or 0.0,
                rps=measure("rps"),
                avg_ms=measure("avg"),
            )
            self.window_start = end
        return self.controller.users, float(min(max(self.controller.users, 1), MAX_PID_SPAWN_RATE))

    def status(self) -> str | None:
        history = getattr(self, "controller", None) and self.controller.history
        if not history:
            return None
        last = history[-1]
        return f"{last.users} users, {self.metric} {last.measured_ms:.0f} ms (target {last.target_ms:.0f})"

    def outcome(self) -> dict[str, Any]:
        c = self.controller
        return {
            "name": self.name,
            "target_latency_ms": c.target_ms,
            "latency_metric": self.metric,
            "settled": c.settled,
            "settled_after_s": None if c.settled_at is None else round(c.settled_at - c.history[0].time, 1),
            "settled_users": c.settled_users,
            "settled_latency_ms": c.settled_latency_ms,
            "settled_rps": c.settled_rps,
            "trace": [
                {"time_s": round(r.time - c.history[0].time, 1), "users": r.users, "measured_ms": r.measured_ms}
                | {"target_ms": r.target_ms, "fail_ratio": r.fail_ratio, "rps": r.rps, "action": r.action}
                for r in c.history
            ],
        }
