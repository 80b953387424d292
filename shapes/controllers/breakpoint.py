"""The breakpoint test's step schedule and judge: raise users step by step until an SLO breaks.

Each step runs ``step_time_s``; the first ``settle_time_s`` are ignored (spawning, queues filling, stats
catching up) and the rest is the step's measurement window. The glue drives it once per tick::

    phase = judge.poll(now)
    if phase == OPEN:      # the settle time is over: the step's window begins now
        before = snapshot()
    elif phase == DUE:     # the window is complete: measure it and judge the step
        users = judge.judge(now, WindowStats.between(before, snapshot()).metrics())
        if users is None:  # breach or max users reached: judge.result() has the outcome
            ...

Time-keeping follows real ticks, so stalled ticks (a master blocks while it spawns) cannot mix steps:
the window opens at the first tick after the settle time and closes at the first tick after the step's
planned end (later if the window would otherwise be shorter than ``min_window_s``). A late tick therefore
gives a shorter or longer window, but always one that holds only data of its own step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from core.errors import InputError
from core.slo import SLO, SLOResult, evaluate

SETTLING, OPEN, MEASURING, DUE, FINISHED = "settling", "open", "measuring", "due", "finished"
MIN_WINDOW_S = 3.0
"""Shortest window judged (Locust workers report every 3 s, so less may hold no data at all)."""

Measurements = Mapping[str, float | None] | Callable[[str, str | None], float | None]
"""Either ``measure(metric, name)`` or a dict keyed ``metric`` or ``metric[name]`` (e.g. ``p95[chat:simple]``)."""


@dataclass(frozen=True)
class StepResult:
    """One step's verdict on its own window."""

    users: int
    window_start: float
    window_end: float
    rps: float | None
    p50: float | None
    p95: float | None
    fail_ratio: float | None
    passed: bool
    breached: tuple[str, ...] = ()
    """Text of each breached SLO as the user wrote it."""
    details: tuple[str, ...] = ()
    """How each breached SLO stood, e.g. ``p95 3100 > 2500`` (or why the step failed without data)."""
    results: tuple[SLOResult, ...] = field(default=(), repr=False)

    def as_row(self) -> dict[str, object]:
        """The step as a table row for reports."""
        return {
            "users": self.users,
            "rps": self.rps,
            "p50_ms": self.p50,
            "p95_ms": self.p95,
            "fail_ratio": self.fail_ratio,
            "passed": self.passed,
            "breached": list(self.breached),
            "window_s": round(self.window_end - self.window_start, 3),
            "slos": {str(result.slo): result.value for result in self.results},
        }


@dataclass(frozen=True)
class BreakpointResult:
    """The outcome: the last passing step's users and rps, every step, and why the test stopped."""

    max_sustainable_users: int | None
    rps: float | None
    steps: list[StepResult]
    reason: str
    finished: bool


class BreakpointJudge:
    """Runs ``start_users``, ``+step_users``, ... up to ``max_users``; stops at the first step that breaches."""

    def __init__(
        self,
        start_users: int,
        step_users: int,
        max_users: int,
        step_time_s: float,
        settle_time_s: float,
        slos: Sequence[SLO],
        *,
        min_window_s: float = MIN_WINDOW_S,
    ) -> None:
        if start_users < 1 or step_users < 1 or max_users < start_users:
            raise InputError(
                f"breakpoint users need start >= 1, step >= 1 and max >= start "
                f"(got start {start_users}, step {step_users}, max {max_users})"
            )
        if not 0 <= settle_time_s < step_time_s:
            raise InputError(
                f"breakpoint settle time ({settle_time_s:g} s) must be shorter than the step time ({step_time_s:g} s)"
            )
        if not slos:
            raise InputError("breakpoint needs at least one --slo to judge steps by, e.g. --slo 'p95<2500'")
        self.start_users, self.step_users, self.max_users = start_users, step_users, max_users
        self.step_time_s, self.settle_time_s = step_time_s, settle_time_s
        self.min_window_s = min(min_window_s, step_time_s - settle_time_s)
        self.slos = list(slos)
        self.reset()

    def reset(self) -> None:
        """Forget all steps (a restart in the web UI reuses the instance)."""
        self.users = 0
        """Users of the current step (0 before ``start``)."""
        self.steps: list[StepResult] = []
        self.finished = False
        self._reason = "not started"
        self._step_start = math.nan
        self._window_start: float | None = None

    @property
    def schedule(self) -> list[int]:
        """Every step's user count, in order (the last one is capped at ``max_users``)."""
        counts = list(range(self.start_users, self.max_users, self.step_users))
        return [*counts, self.max_users]

    def start(self, now: float) -> int:
        """Begin the first step at ``now``; returns its user count."""
        self.reset()
        self._reason = "in progress"
        return self._begin_step(now, self.start_users)

    def poll(self, now: float) -> str:
        """The phase at ``now``: SETTLING, OPEN (once: the window starts now), MEASURING, DUE or FINISHED."""
        if self.finished:
            return FINISHED
        if self.users == 0:
            raise RuntimeError("BreakpointJudge.poll() before start()")
        if self._window_start is None:
            if now < self._step_start + self.settle_time_s:
                return SETTLING
            self._window_start = now
            return OPEN
        planned_end = self._step_start + self.step_time_s
        if now >= planned_end and now - self._window_start >= self.min_window_s:
            return DUE
        return MEASURING

    @property
    def window_start(self) -> float | None:
        """When the current step's measurement window opened (None while settling)."""
        return self._window_start

    def judge(self, now: float, measurements: Measurements) -> int | None:
        """Judge the current step on its window ``[window_start, now]``; returns the next step's users or None."""
        if self.finished or self._window_start is None:
            raise RuntimeError("BreakpointJudge.judge() needs an open window (poll() returned OPEN earlier)")
        measure = _as_measure(measurements)
        results = evaluate(self.slos, measure)
        breached = [r for r in results if r.breached]
        details = [r.slo.compare(r.value) if r.value is not None else f"no data for {r.slo}" for r in breached]
        no_data = all(r.value is None for r in results)  # even optional SLOs need some data to pass a step
        if no_data:
            details = ["no data in the step's window"]
        step = StepResult(
            users=self.users,
            window_start=self._window_start,
            window_end=now,
            rps=measure("rps", None),
            p50=measure("p50", None),
            p95=measure("p95", None),
            fail_ratio=measure("fail_ratio", None),
            passed=not breached and not no_data,
            breached=tuple(r.slo.text or str(r.slo) for r in breached),
            details=tuple(details),
            results=tuple(results),
        )
        self.steps.append(step)
        if not step.passed:
            self.finished, self._reason = True, f"breach at {step.users} users: {'; '.join(details)}"
            return None
        if self.users >= self.max_users:
            self.finished, self._reason = True, f"reached max users ({self.max_users}) without a breach"
            return None
        return self._begin_step(now, min(self.users + self.step_users, self.max_users))

    def result(self) -> BreakpointResult:
        """The outcome so far (``finished`` tells whether the test reached its verdict)."""
        passing = [s for s in self.steps if s.passed]
        last = passing[-1] if passing else None
        return BreakpointResult(
            max_sustainable_users=last.users if last else None,
            rps=last.rps if last else None,
            steps=list(self.steps),
            reason=self._reason,
            finished=self.finished,
        )

    def _begin_step(self, now: float, users: int) -> int:
        self.users, self._step_start, self._window_start = users, now, None
        return users


def _as_measure(measurements: Measurements) -> Callable[[str, str | None], float | None]:
    if callable(measurements):
        return measurements
    table = measurements
    return lambda metric, name: table.get(metric if name is None else f"{metric}[{name}]")
