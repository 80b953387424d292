"""The wave shape: alternating peaks and valleys of users, smooth (sine) or square."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.settings import Settings, setting
from shapes.base import ScheduleShape, UserCounts, run_time
from shapes.schedules import Wave


@dataclass(frozen=True)
class WaveSettings(Settings):
    """The wave shape's own options (it also reads --min-users and --max-users)."""

    waves: int = setting(3, "wave: number of waves", web_ui=True)
    wave_time: float = setting(60.0, "wave: seconds per wave", web_ui=True)
    wave_form: str = setting("sine", "wave: smooth or square", choices=("sine", "square"), web_ui=True)


class WaveShape(ScheduleShape):
    """Alternating peaks and valleys, smooth (sine) or square."""

    abstract = True
    name = "wave"
    settings_class = WaveSettings

    def make_schedule(self, options: Any) -> Wave:
        counts, wave = UserCounts.read(options), WaveSettings.read(options)
        return Wave(
            valley=counts.min_users,
            peak=counts.max_users,
            waves=wave.waves,
            wave_time=wave.wave_time,
            form=wave.wave_form,
            spawn_rate=self.spawn_rate(),
            run_time=run_time(options),
        )
