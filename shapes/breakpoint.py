"""The breakpoint shape: raise users step by step, judge each step's own window against --slo, stop at the
first breach; its outcome is the most users the target sustained."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from core.book_measure import BookSnapshot, window_measure
from core.errors import InputError
from core.settings import Settings, setting
from core.slo import SloSettings
from shapes.base import ChatswarmShape, UserCounts
from shapes.controllers.breakpoint import DUE, OPEN, BreakpointJudge


@dataclass(frozen=True)
class BreakpointSettings(Settings):
    """The breakpoint shape's own option (it also reads the step options of UserCounts and --slo)."""

    settle_time: float = setting(10.0, "breakpoint: seconds ignored at each step start", web_ui=True)


def check_steps(counts: UserCounts, settings: BreakpointSettings) -> None:
    """The steps' options, named as the user typed them (the judge's own checks cannot)."""
    for flag, value in (("--start-users", counts.start_users), ("--step-users", counts.step_users)):
        if value < 1:
            raise InputError(f"{flag}: must be 1 or more, got {value}")
    if counts.max_users < counts.start_users:
        raise InputError(f"--max-users ({counts.max_users}) must be at least --start-users ({counts.start_users})")
    settle, step_time = settings.settle_time, counts.step_time
    if not 0 <= settle < step_time:
        raise InputError(
            f"--settle-time ({settle:g} s) must be 0 or more and shorter than --step-time ({step_time:g} s)"
        )


class BreakpointShape(ChatswarmShape):
    """Raise users step by step, judge each step's own window against --slo, stop at the first breach."""

    abstract = True
    name = "breakpoint"
    settings_class = BreakpointSettings

    def configure(self, options: Any) -> None:
        counts, settings = UserCounts.read(options), BreakpointSettings.read(options)
        check_steps(counts, settings)
        self.judge = BreakpointJudge(
            start_users=counts.start_users,
            step_users=counts.step_users,
            max_users=counts.max_users,
            step_time_s=counts.step_time,
            settle_time_s=settings.settle_time,
            # --slo is declared with the run's options (plugins/setup/options.py); shapes/ may not import it.
            slos=SloSettings.read(options).slos,
        )
        self.step_spawn_rate = self.spawn_rate(default=max(counts.step_users, 1))
        self.window_start: BookSnapshot | None = None
        self.started = False

    def tick(self) -> tuple[int, float] | None:
        now = time.monotonic()
        if self.past_run_time():
            return None
        if not self.started:
            self.started = True
            return self.judge.start(now), self.step_spawn_rate
        phase = self.judge.poll(now)
        if phase == OPEN:
            self.window_start = self.snapshot(now)
        elif phase == DUE and self.window_start is not None:
            users = self.judge.judge(now, window_measure(self.window_start, self.snapshot(now)))
            if users is None:
                return None
        elif self.judge.finished:
            return None
        return self.judge.users, self.step_spawn_rate

    def status(self) -> str | None:
        if not getattr(self, "judge", None) or not self.judge.users:
            return None
        return f"step {len(self.judge.steps) + 1}: {self.judge.users} users"

    def outcome(self) -> dict[str, Any]:
        result = self.judge.result()
        return {
            "name": self.name,
            "max_sustainable_users": result.max_sustainable_users,
            "max_sustainable_rps": result.rps,
            "reason": result.reason if self.judge.finished else f"ended early at {self.judge.users} users, no breach",
            "slos": [str(slo) for slo in self.judge.slos],
            "steps": [step.as_row() for step in result.steps],
        }
