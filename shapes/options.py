"""The options of the load shapes, and the check that the chosen shape can run with them."""

from __future__ import annotations

import argparse
from typing import Any

from shapes.library import SHAPES
from users.errors import InputError
from users.options import add_option, option

CHECKED_ON_WORKERS = False
"""Only the master runs the shape (workers do not even get --run-time), so only it checks the options."""

NO_SHAPE = "none"
"""--shape value for Locust's own controls (-u, -r, -t, or the web UI's fields)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the shape options (shared names first, then per shape)."""
    add_option(
        parser, "--shape", default=NO_SHAPE, choices=[NO_SHAPE, *SHAPES], help="Load shape; none = Locust's controls"
    )
    add_option(parser, "--start-users", type=int, default=10, help="Users at the first step (ramp, breakpoint)")
    add_option(parser, "--step-users", type=int, default=10, help="Users added per step (ramp, breakpoint)")
    add_option(parser, "--step-time", type=float, default=30.0, help="Seconds per step (ramp, breakpoint)")
    add_option(parser, "--min-users", type=int, default=1, help="Lowest users (wave valley, burst/stability base, pid)")
    add_option(parser, "--max-users", type=int, default=100, help="Highest users (ramp top, wave/stability peak, pid)")
    add_option(parser, "--hold-time", type=float, default=60.0, help="ramp: seconds to hold at the top")
    add_option(parser, "--waves", type=int, default=3, help="wave: number of waves")
    add_option(parser, "--wave-time", type=float, default=60.0, help="wave: seconds per wave")
    add_option(parser, "--wave-form", default="sine", choices=["sine", "square"], help="wave: smooth or square")
    add_option(parser, "--burst-users", type=int, default=50, help="burst: users added by each burst")
    add_option(parser, "--burst-ramp-ms", type=float, default=1000.0, help="burst: milliseconds to start them all")
    add_option(parser, "--burst-hold", type=float, default=20.0, help="burst: seconds each burst lasts")
    add_option(parser, "--burst-rest", type=float, default=20.0, help="burst: seconds of rest after each burst")
    add_option(parser, "--bursts", type=int, default=3, help="burst: number of bursts")
    add_option(parser, "--peak-every", type=float, default=300.0, help="stability: seconds from peak to peak")
    add_option(parser, "--peak-time", type=float, default=60.0, help="stability: seconds each peak lasts")
    add_option(parser, "--stages", default="", help="stages: DURATION:USERS:SPAWN_RATE,... e.g. 60s:10:5,2m:50:10")
    add_option(parser, "--settle-time", type=float, default=10.0, help="breakpoint: seconds ignored at each step start")
    add_option(parser, "--target-latency", type=float, default=1000.0, help="pid: latency (ms) to hold")
    add_option(parser, "--latency-percentile", default="p95", help="pid: statistic to hold, e.g. p95, p50, ttft_p95")
    add_option(parser, "--control-window", type=float, default=10.0, help="pid: seconds between decisions")
    add_option(parser, "--max-fail-ratio", type=float, default=0.05, help="pid: failure ratio that makes it back off")


def selected_shape(options: Any) -> str | None:
    """The --shape name, or None for Locust's own controls."""
    name = option(options, "shape", NO_SHAPE)
    return None if name == NO_SHAPE else name


def check_options(options: Any) -> None:
    """Configure the chosen shape once with the options, so a bad value fails before the test starts."""
    name = selected_shape(options)
    if name is None:
        return
    if name not in SHAPES:
        raise InputError(f"--shape: unknown shape {name!r}; choose one of {', '.join(SHAPES)}")
    SHAPES[name]().configure(options)
