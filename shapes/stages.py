"""The stages shape: a list of (duration, users, spawn rate) stages from --stages, one after the other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.settings import Settings, setting
from shapes.base import ScheduleShape
from shapes.schedules import Stages


@dataclass(frozen=True)
class StagesSettings(Settings):
    """The stages shape's one option: its plan."""

    stages: str = setting("", "stages: DURATION:USERS:SPAWN_RATE,... e.g. 60s:10:5,2m:50:10", web_ui=True)


class StagesShape(ScheduleShape):
    """A list of (duration, users, spawn rate) stages from --stages."""

    abstract = True
    name = "stages"
    settings_class = StagesSettings

    def make_schedule(self, options: Any) -> Stages:
        return Stages.parse(StagesSettings.read(options).stages)
