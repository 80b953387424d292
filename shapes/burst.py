"""The burst shape: bursts of users started within milliseconds, held, then a rest; a given number of times."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.settings import Settings, setting
from shapes.base import ScheduleShape, UserCounts
from shapes.schedules import Burst


@dataclass(frozen=True)
class BurstSettings(Settings):
    """The burst shape's own options (it also reads --min-users, the load between bursts)."""

    burst_users: int = setting(50, "burst: users added by each burst", web_ui=True)
    burst_ramp_ms: float = setting(1000.0, "burst: milliseconds to start them all", web_ui=True)
    burst_hold: float = setting(20.0, "burst: seconds each burst lasts", web_ui=True)
    burst_rest: float = setting(20.0, "burst: seconds of rest after each burst", web_ui=True)
    bursts: int = setting(3, "burst: number of bursts", web_ui=True)


class BurstShape(ScheduleShape):
    """Bursts of users ramped up within milliseconds, held, then a rest; a given number of times."""

    abstract = True
    name = "burst"
    settings_class = BurstSettings

    def make_schedule(self, options: Any) -> Burst:
        counts, burst = UserCounts.read(options), BurstSettings.read(options)
        return Burst(
            base=counts.min_users,
            burst_users=burst.burst_users,
            ramp_ms=burst.burst_ramp_ms,
            hold_time=burst.burst_hold,
            rest_time=burst.burst_rest,
            bursts=burst.bursts,
        )
