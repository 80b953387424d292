"""Time-driven load schedules: how many users at each second of the test, and how fast to get there.

Plain classes with no Locust imports: ``at(t)`` takes the seconds since the test started and returns
``(users, spawn_rate)``, or None once the schedule is over. The LoadTestShape glue (shapes/ramp.py,
wave.py, burst.py, stability.py, stages.py) only asks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import InputError

Step = tuple[int, float]
"""(users, spawn rate in users per second)."""


def _positive(value: float, flag: str, allow_zero: bool = False) -> float:
    if value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{flag}: must be {'0 or more' if allow_zero else 'greater than 0'}, got {value:g}")
    return value


@dataclass(frozen=True)
class Ramp:
    """Start with ``start`` users, add ``step`` every ``step_time`` seconds up to ``top``, hold there, end."""

    start: int
    step: int
    step_time: float
    top: int
    hold_time: float
    spawn_rate: float

    def __post_init__(self) -> None:
        _positive(self.start, "--start-users")
        _positive(self.step, "--step-users")
        _positive(self.step_time, "--step-time")
        _positive(self.hold_time, "--hold-time", allow_zero=True)
        if self.top < self.start:
            raise InputError(f"--max-users ({self.top}) must be at least --start-users ({self.start})")

    @property
    def duration(self) -> float:
        steps = math.ceil((self.top - self.start) / self.step)
        return steps * self.step_time + self.hold_time

    def at(self, t: float) -> Step | None:
        if t >= self.duration:
            return None
        return min(self.start + self.step * int(t // self.step_time), self.top), self.spawn_rate

    def describe(self, t: float) -> str:
        step = min(int(t // self.step_time), math.ceil((self.top - self.start) / self.step))
        return f"step {step + 1}"


@dataclass(frozen=True)
class Wave:
    """Alternate between ``valley`` and ``peak`` users, ``waves`` times ``wave_time`` s, smooth or square."""

    valley: int
    peak: int
    waves: int
    wave_time: float
    form: str
    spawn_rate: float
    run_time: float | None = None

    def __post_init__(self) -> None:
        _positive(self.waves, "--waves")
        _positive(self.wave_time, "--wave-time")
        if not 0 <= self.valley <= self.peak or self.peak < 1:
            raise InputError(f"--min-users ({self.valley}) must be between 0 and --max-users ({self.peak})")
        if self.form not in ("sine", "square"):
            raise InputError(f"--wave-form: {self.form!r} is not sine or square")

    @property
    def duration(self) -> float:
        natural = self.waves * self.wave_time
        return min(natural, self.run_time) if self.run_time else natural

    def at(self, t: float) -> Step | None:
        if t >= self.duration:
            return None
        phase = (t % self.wave_time) / self.wave_time
        # Both forms start in a valley and peak halfway through the wave.
        level = float(phase >= 0.5) if self.form == "square" else (1 - math.cos(2 * math.pi * phase)) / 2
        return round(self.valley + (self.peak - self.valley) * level), self.spawn_rate

    def describe(self, t: float) -> str:
        return f"wave {int(t // self.wave_time) + 1}/{self.waves}"


@dataclass(frozen=True)
class Burst:
    """``bursts`` times: ``burst_users`` more users ramped up within ``ramp_ms``, held, then a rest at base."""

    base: int
    burst_users: int
    ramp_ms: float
    hold_time: float
    rest_time: float
    bursts: int

    def __post_init__(self) -> None:
        _positive(self.base, "--min-users", allow_zero=True)
        _positive(self.burst_users, "--burst-users")
        _positive(self.ramp_ms, "--burst-ramp-ms")
        _positive(self.hold_time, "--burst-hold")
        _positive(self.rest_time, "--burst-rest", allow_zero=True)
        _positive(self.bursts, "--bursts")

    @property
    def period(self) -> float:
        return self.hold_time + self.rest_time

    @property
    def duration(self) -> float:
        return self.bursts * self.period

    def at(self, t: float) -> Step | None:
        if t >= self.duration:
            return None
        in_burst = t % self.period < self.hold_time
        rate = self.burst_users / (self.ramp_ms / 1000)
        return (self.base + self.burst_users if in_burst else self.base), rate

    def describe(self, t: float) -> str:
        state = "burst" if t % self.period < self.hold_time else "rest"
        return f"{state} {int(t // self.period) + 1}/{self.bursts}"


@dataclass(frozen=True)
class Stability:
    """A steady ``base`` load for ``run_time`` s with ``peak`` users for ``peak_time`` s out of every ``every``."""

    base: int
    peak: int
    every: float
    peak_time: float
    run_time: float
    spawn_rate: float

    def __post_init__(self) -> None:
        _positive(self.base, "--min-users")
        _positive(self.every, "--peak-every")
        _positive(self.peak_time, "--peak-time", allow_zero=True)
        _positive(self.run_time, "--run-time")
        if self.peak < self.base:
            raise InputError(f"--max-users ({self.peak}) must be at least --min-users ({self.base})")
        if self.peak_time >= self.every:
            raise InputError(f"--peak-time ({self.peak_time:g}) must be shorter than --peak-every ({self.every:g})")

    @property
    def duration(self) -> float:
        return self.run_time

    def at(self, t: float) -> Step | None:
        if t >= self.run_time:
            return None
        in_peak = t % self.every >= self.every - self.peak_time
        return (self.peak if in_peak else self.base), self.spawn_rate

    def describe(self, t: float) -> str:
        return "peak" if t % self.every >= self.every - self.peak_time else "base"


@dataclass(frozen=True)
class Stages:
    """A list of (duration s, users, spawn rate) stages, run one after the other."""

    stages: tuple[tuple[float, int, float], ...]

    def __post_init__(self) -> None:
        if not self.stages:
            raise InputError("--stages: give at least one stage, e.g. 60s:10:5,120s:50:10")

    @classmethod
    def parse(cls, text: str) -> Stages:
        """Parse ``60s:10:5, 2m:50:10`` (duration:users:spawn-rate, comma separated)."""
        stages = []
        for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
            fields = part.split(":")
            try:
                if len(fields) != 3:
                    raise ValueError
                duration, users, rate = parse_duration(fields[0]), int(fields[1]), float(fields[2])
            except ValueError:
                raise InputError(
                    f"--stages: bad stage {part!r}; expected DURATION:USERS:SPAWN_RATE, e.g. 60s:10:5"
                ) from None
            if duration <= 0 or users < 0 or rate <= 0:
                raise InputError(f"--stages: stage {part!r} needs a positive duration and spawn rate, users >= 0")
            stages.append((duration, users, rate))
        return cls(tuple(stages))

    @property
    def duration(self) -> float:
        return sum(stage[0] for stage in self.stages)

    def at(self, t: float) -> Step | None:
        end = 0.0
        for duration, users, rate in self.stages:
            end += duration
            if t < end:
                return users, rate
        return None

    def describe(self, t: float) -> str:
        end = 0.0
        for index, (duration, _users, _rate) in enumerate(self.stages):
            end += duration
            if t < end:
                return f"stage {index + 1}/{len(self.stages)}"
        return "done"


_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``2m`` or ``1h``; raises ValueError."""
    text = text.strip().lower()
    if text and text[-1] in _UNITS:
        return float(text[:-1]) * _UNITS[text[-1]]
    return float(text)
