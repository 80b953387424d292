"""The stability shape: a steady base load with periodic peaks, for --run-time (endurance)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.settings import Settings, setting
from shapes.base import ScheduleShape, UserCounts, required_run_time
from shapes.schedules import Stability


@dataclass(frozen=True)
class StabilitySettings(Settings):
    """The stability shape's own options (it also reads --min-users, --max-users and --run-time)."""

    peak_every: float = setting(300.0, "stability: seconds from peak to peak", web_ui=True)
    peak_time: float = setting(60.0, "stability: seconds each peak lasts", web_ui=True)


class StabilityShape(ScheduleShape):
    """A steady base load with periodic peaks, for --run-time (endurance)."""

    abstract = True
    name = "stability"
    settings_class = StabilitySettings

    def make_schedule(self, options: Any) -> Stability:
        counts, stability = UserCounts.read(options), StabilitySettings.read(options)
        return Stability(
            base=counts.min_users,
            peak=counts.max_users,
            every=stability.peak_every,
            peak_time=stability.peak_time,
            run_time=required_run_time(options, self.name),
            spawn_rate=self.spawn_rate(),
        )
