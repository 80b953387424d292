"""The LoadTestShape classes: thin adapters from Locust's tick() to the schedules and controllers.

Every class here is abstract as far as Locust's discovery goes (``abstract = True``), so importing them
never turns a run into a shape run by accident; ``--shape NAME`` (plugins/setup/shape_select.py) picks one.
Shapes read their options when a test starts (``reset_time``), so web UI edits and restarts take effect,
and every shape ends by itself.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from locust import LoadTestShape

from core.errors import InputError
from core.options import option
from core.slo import parse_slos
from shapes import schedules
from shapes.controllers.breakpoint import DUE, OPEN, BreakpointJudge
from shapes.controllers.pid import PIDController
from shapes.measure import StatsSnapshot, WindowMeasure, snapshot

DEFAULT_SPAWN_RATE = 10.0
"""Users started per second when neither the shape nor --spawn-rate says otherwise."""

MAX_PID_SPAWN_RATE = 100
"""The PID shape reaches a new user count within a second, up to this many users per second."""


def _run_time(options: Any, shape: str) -> float:
    run_time = option(options, "run_time", None)
    if not run_time:
        raise InputError(f"--shape {shape} runs until --run-time (-t); give one, e.g. -t 10m")
    return float(run_time)


class ChatswarmShape(LoadTestShape):
    """Base of Chatswarm's shapes: reads its options at each test start and reports its outcome."""

    abstract = True
    name: ClassVar[str] = ""
    """The value of --shape that selects this shape."""

    requested_spawn_rate: float | None = None
    """--spawn-rate when the user gave one (Locust fills in 1 otherwise, so plugins record it at init)."""

    def __init__(self) -> None:
        super().__init__()
        self.options: Any = None

    def spawn_rate(self, default: float = DEFAULT_SPAWN_RATE) -> float:
        """Users per second to start: --spawn-rate if given, else the shape's default."""
        return float(self.requested_spawn_rate or default)

    def configure(self, options: Any) -> None:
        """Read and check this shape's options (raises InputError) and forget any earlier test."""

    def reset_time(self) -> None:
        """A test (re)starts: restart the clock and the shape's state (the web UI reuses the instance)."""
        super().reset_time()
        if self.runner is not None:
            self.options = self.runner.environment.parsed_options
            self.configure(self.options)

    def past_run_time(self) -> bool:
        """Whether --run-time (-t), when given, is over: it caps every shape, however long its plan."""
        run_time = option(self.options, "run_time", None) if self.options is not None else None
        return bool(run_time) and self.get_run_time() >= float(run_time)

    def outcome(self) -> dict[str, Any]:
        """The ``shape`` section of summary.json."""
        return {"name": self.name}

    def status(self) -> str | None:
        """A few words on where the shape is, for the progress line."""
        return None


class ScheduleShape(ChatswarmShape):
    """A shape that follows a time schedule from shapes/schedules.py."""

    abstract = True
    schedule: Any = None

    def make_schedule(self, options: Any) -> Any:
        raise NotImplementedError

    def configure(self, options: Any) -> None:
        self.schedule = self.make_schedule(options)

    def tick(self) -> tuple[int, float] | None:
        return None if self.past_run_time() else self.schedule.at(self.get_run_time())

    def status(self) -> str | None:
        return self.schedule.describe(self.get_run_time()) if self.schedule else None

    def outcome(self) -> dict[str, Any]:
        return {"name": self.name, "planned_duration_s": self.schedule.duration if self.schedule else None}


class RampShape(ScheduleShape):
    """Start users, add a step every step time up to the maximum, hold there for a while, end."""

    abstract = True
    name = "ramp"

    def make_schedule(self, options: Any) -> schedules.Ramp:
        step = int(option(options, "step_users", 10))
        return schedules.Ramp(
            start=int(option(options, "start_users", 10)),
            step=step,
            step_time=float(option(options, "step_time", 30.0)),
            top=int(option(options, "max_users", 100)),
            hold_time=float(option(options, "hold_time", 60.0)),
            spawn_rate=self.spawn_rate(default=max(step, 1)),
        )


class WaveShape(ScheduleShape):
    """Alternating peaks and valleys, smooth (sine) or square."""

    abstract = True
    name = "wave"

    def make_schedule(self, options: Any) -> schedules.Wave:
        return schedules.Wave(
            valley=int(option(options, "min_users", 1)),
            peak=int(option(options, "max_users", 100)),
            waves=int(option(options, "waves", 3)),
            wave_time=float(option(options, "wave_time", 60.0)),
            form=option(options, "wave_form", "sine"),
            spawn_rate=self.spawn_rate(),
            run_time=option(options, "run_time", None),
        )


class BurstShape(ScheduleShape):
    """Bursts of users ramped up within milliseconds, held, then a rest; a given number of times."""

    abstract = True
    name = "burst"

    def make_schedule(self, options: Any) -> schedules.Burst:
        return schedules.Burst(
            base=int(option(options, "min_users", 1)),
            burst_users=int(option(options, "burst_users", 50)),
            ramp_ms=float(option(options, "burst_ramp_ms", 1000.0)),
            hold_time=float(option(options, "burst_hold", 20.0)),
            rest_time=float(option(options, "burst_rest", 20.0)),
            bursts=int(option(options, "bursts", 3)),
        )


class StabilityShape(ScheduleShape):
    """A steady base load with periodic peaks, for --run-time (endurance)."""

    abstract = True
    name = "stability"

    def make_schedule(self, options: Any) -> schedules.Stability:
        return schedules.Stability(
            base=int(option(options, "min_users", 1)),
            peak=int(option(options, "max_users", 100)),
            every=float(option(options, "peak_every", 300.0)),
            peak_time=float(option(options, "peak_time", 60.0)),
            run_time=_run_time(options, self.name),
            spawn_rate=self.spawn_rate(),
        )


class StagesShape(ScheduleShape):
    """A list of (duration, users, spawn rate) stages from --stages."""

    abstract = True
    name = "stages"

    def make_schedule(self, options: Any) -> schedules.Stages:
        return schedules.Stages.parse(option(options, "stages", ""))


class BreakpointShape(ChatswarmShape):
    """Raise users step by step, judge each step's own window against --slo, stop at the first breach."""

    abstract = True
    name = "breakpoint"

    def configure(self, options: Any) -> None:
        self.judge = BreakpointJudge(
            start_users=int(option(options, "start_users", 10)),
            step_users=int(option(options, "step_users", 10)),
            max_users=int(option(options, "max_users", 100)),
            step_time_s=float(option(options, "step_time", 30.0)),
            settle_time_s=float(option(options, "settle_time", 10.0)),
            slos=parse_slos(option(options, "slo", [])),
        )
        self.step_spawn_rate = self.spawn_rate(default=max(int(option(options, "step_users", 10)), 1))
        self.window_start: StatsSnapshot | None = None
        self.started = False

    def tick(self) -> tuple[int, float] | None:
        now = time.monotonic()
        if self.past_run_time():
            return None
        if not self.started:
            self.started = True
            return self.judge.start(now), self.step_spawn_rate
        phase = self.judge.poll(now)
        stats = self.runner.stats
        if phase == OPEN:
            self.window_start = snapshot(stats, now)
        elif phase == DUE and self.window_start is not None:
            users = self.judge.judge(now, WindowMeasure(self.window_start, snapshot(stats, now)))
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


class PIDShape(ChatswarmShape):
    """Regulate users to hold --target-latency on --latency-percentile, for --run-time."""

    abstract = True
    name = "pid"

    def configure(self, options: Any) -> None:
        self.metric = option(options, "latency_percentile", "p95")
        self.run_time = _run_time(options, self.name)
        self.window_s = float(option(options, "control_window", 10.0))
        if self.window_s < 3:
            raise InputError("--control-window: must be 3 seconds or more (Locust workers report every 3 s)")
        parse_slos([f"{self.metric}<1"])  # the metric must be one the SLO language knows
        self.controller = PIDController(
            target_ms=float(option(options, "target_latency", 1000.0)),
            min_users=int(option(options, "min_users", 1)),
            max_users=int(option(options, "max_users", 100)),
            start_users=int(option(options, "start_users", 0)) or None,
            window_s=self.window_s,
            max_fail_ratio=float(option(options, "max_fail_ratio", 0.05)),
        )
        self.window_start: StatsSnapshot | None = None

    def tick(self) -> tuple[int, float] | None:
        if self.get_run_time() >= self.run_time:
            return None
        now = time.monotonic()
        if self.window_start is None:
            self.window_start = snapshot(self.runner.stats, now)
            return self.controller.start(now), MAX_PID_SPAWN_RATE
        if now - self.window_start.time >= self.window_s:
            end = snapshot(self.runner.stats, now)
            measure = WindowMeasure(self.window_start, end)
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


class ArrivalShape(ChatswarmShape):
    """An open workload: a pool of --max-users users starts requests at --arrival-rate, for --run-time."""

    abstract = True
    name = "arrival"

    def configure(self, options: Any) -> None:
        if float(option(options, "arrival_rate", 0.0)) <= 0:
            raise InputError("--shape arrival needs --arrival-rate, the requests to start per second")
        self.run_time = _run_time(options, self.name)
        self.pool = int(option(options, "max_users", 100))
        if self.pool < 1:
            raise InputError("--max-users: the arrival shape's pool needs at least 1 user")

    def tick(self) -> tuple[int, float] | None:
        if self.get_run_time() >= self.run_time:
            return None
        return self.pool, self.spawn_rate(default=min(self.pool, 100))

    def outcome(self) -> dict[str, Any]:
        return {"name": self.name, "pool_users": self.pool}


SHAPES: dict[str, type[ChatswarmShape]] = {
    shape.name: shape
    for shape in (
        RampShape,
        WaveShape,
        BurstShape,
        StabilityShape,
        StagesShape,
        BreakpointShape,
        PIDShape,
        ArrivalShape,
    )
}
"""Every shape by its --shape name."""
