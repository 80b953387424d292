"""The ramp shape: start users, add a step every step time up to the maximum, hold there for a while, end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.settings import Settings, setting
from shapes.base import ScheduleShape, UserCounts
from shapes.schedules import Ramp


@dataclass(frozen=True)
class RampSettings(Settings):
    """The ramp shape's own options (it also reads --start-users, --step-users, --step-time, --max-users)."""

    hold_time: float = setting(60.0, "ramp: seconds to hold at the top", web_ui=True)


class RampShape(ScheduleShape):
    """Start users, add a step every step time up to the maximum, hold there for a while, end."""

    abstract = True
    name = "ramp"
    settings_class = RampSettings

    def make_schedule(self, options: Any) -> Ramp:
        counts, ramp = UserCounts.read(options), RampSettings.read(options)
        return Ramp(
            start=counts.start_users,
            step=counts.step_users,
            step_time=counts.step_time,
            top=counts.max_users,
            hold_time=ramp.hold_time,
            spawn_rate=self.spawn_rate(default=max(counts.step_users, 1)),
        )
