"""What every load shape shares: the base classes, and the user counts several shapes read.

Every shape class is abstract as far as Locust's discovery goes (``abstract = True``), so importing one never
turns a run into a shape run by accident; ``--shape NAME`` (plugins/setup/shape_select.py) picks one.
Shapes read their options when a test starts (``reset_time``), so web UI edits and restarts take effect,
and every shape ends by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from locust import LoadTestShape

from core.book_measure import BookSnapshot
from core.errors import InputError
from core.metric_book import MetricBook
from core.settings import Settings, setting

DEFAULT_SPAWN_RATE = 10.0
"""Users started per second when neither the shape nor --spawn-rate says otherwise."""


@dataclass(frozen=True)
class UserCounts(Settings):
    """The user counts several shapes read: where they start, how they step, the lowest and the highest."""

    start_users: int = setting(10, "Users at the first step (ramp, breakpoint)", web_ui=True)
    step_users: int = setting(10, "Users added per step (ramp, breakpoint)", web_ui=True)
    step_time: float = setting(30.0, "Seconds per step (ramp, breakpoint)", web_ui=True)
    min_users: int = setting(1, "Lowest users (wave valley, burst/stability base, pid)", web_ui=True)
    max_users: int = setting(100, "Highest users (ramp top, wave/stability peak, pid)", web_ui=True)


def run_time(options: Any) -> float | None:
    """Locust's --run-time (-t) in seconds, or None when not given (Locust declares it, so it is read by name)."""
    value = getattr(options, "run_time", None)
    return float(value) if value else None


def required_run_time(options: Any, shape: str) -> float:
    """--run-time for a shape that runs until it (raises InputError naming the option when missing)."""
    seconds = run_time(options)
    if seconds is None:
        raise InputError(f"--shape {shape} runs until --run-time (-t); give one, e.g. -t 10m")
    return seconds


class ChatswarmShape(LoadTestShape):
    """Base of Chatswarm's shapes: reads its options at each test start and reports its outcome."""

    abstract = True
    name: ClassVar[str] = ""
    """The value of --shape that selects this shape."""

    settings_class: ClassVar[type[Settings] | None] = None
    """The options of this shape alone (shapes/options.py registers them, and the shared UserCounts once)."""

    requested_spawn_rate: float | None = None
    """--spawn-rate when the user gave one (Locust fills in 1 otherwise, so plugins record it at init)."""

    book: Callable[[], MetricBook] | None = None
    """The run's metric book (exact, merged over workers), handed over by plugins/setup/shape_select.py."""

    def __init__(self) -> None:
        super().__init__()
        self.options: Any = None

    def snapshot(self, now: float) -> BookSnapshot:
        """A copy of the run's metric book at ``now``: one end of a judged window (``window_measure``)."""
        return BookSnapshot.take(self.book() if self.book is not None else MetricBook(), now)

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
        seconds = run_time(self.options)
        return seconds is not None and self.get_run_time() >= seconds

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
        """The schedule this shape follows, made from the options (raises InputError for a bad one)."""
        raise NotImplementedError

    def configure(self, options: Any) -> None:
        self.schedule = self.make_schedule(options)

    def tick(self) -> tuple[int, float] | None:
        return None if self.past_run_time() else self.schedule.at(self.get_run_time())

    def status(self) -> str | None:
        return self.schedule.describe(self.get_run_time()) if self.schedule else None

    def outcome(self) -> dict[str, Any]:
        return {"name": self.name, "planned_duration_s": self.schedule.duration if self.schedule else None}
