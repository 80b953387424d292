"""Which load shapes there are (SHAPES, by their --shape name), their options, and the check that the chosen
shape can run with them."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from core.settings import Settings, setting
from shapes.arrival import ArrivalShape
from shapes.base import ChatswarmShape, UserCounts
from shapes.breakpoint import BreakpointShape
from shapes.burst import BurstShape
from shapes.pid import PIDShape
from shapes.ramp import RampShape
from shapes.stability import StabilityShape
from shapes.stages import StagesShape
from shapes.wave import WaveShape

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
"""Every shape by its --shape name; a new shape is its module and one line here (its options come with it)."""

CHECKED_ON_WORKERS = False
"""Only the master runs the shape (workers do not even get --run-time), so only it checks the options."""

NO_SHAPE = "none"
"""--shape value for Locust's own controls (-u, -r, -t, or the web UI's fields)."""


@dataclass(frozen=True)
class ShapeChoice(Settings):
    """Which shape runs the test."""

    shape: str = setting(NO_SHAPE, "Load shape; none = Locust's controls", choices=(NO_SHAPE, *SHAPES))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the shape options: the choice, the shared user counts, then each shape's own."""
    for settings in (ShapeChoice, UserCounts, *(shape.settings_class for shape in SHAPES.values())):
        if settings is not None:
            settings.add_arguments(parser)


def selected_shape(options: Any) -> str | None:
    """The --shape name, or None for Locust's own controls."""
    name = ShapeChoice.read(options).shape
    return None if name == NO_SHAPE else name


def check_options(options: Any) -> None:
    """Configure the chosen shape once with the options, so a bad value fails before the test starts."""
    name = selected_shape(options)
    if name is not None:
        SHAPES[name]().configure(options)
