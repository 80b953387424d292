"""The options of the load shapes, and the check that the chosen shape can run with them."""

from __future__ import annotations

import argparse
from typing import Any

from core.errors import InputError
from core.options import add_option, option
from core.slo import is_latency_metric
from shapes.library import SHAPES

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
    if name == "pid":
        _check_pid(options)
    elif name == "breakpoint":
        _check_breakpoint(options)
    SHAPES[name]().configure(options)


def _check_pid(options: Any) -> None:
    """The PID shape's options, named as the user typed them (the controller's own checks cannot)."""
    if float(option(options, "target_latency", 1000.0)) <= 0:
        raise InputError(f"--target-latency: must be greater than 0 ms, got {option(options, 'target_latency', 0):g}")
    metric = str(option(options, "latency_percentile", "p95"))
    if not is_latency_metric(metric):
        raise InputError(f"--latency-percentile: {metric!r} is not a latency statistic such as p95, p50 or ttft_p95")
    low, high = int(option(options, "min_users", 1)), int(option(options, "max_users", 100))
    if not 1 <= low <= high:
        raise InputError(f"--min-users/--max-users: need 1 <= --min-users ({low}) <= --max-users ({high})")
    fail_ratio = float(option(options, "max_fail_ratio", 0.05))
    if not 0 < fail_ratio <= 1:
        raise InputError(f"--max-fail-ratio: must be a ratio above 0 and at most 1 (0.05 = 5%), got {fail_ratio:g}")


def _check_breakpoint(options: Any) -> None:
    """The breakpoint shape's options, named as the user typed them."""
    for flag, default in (("start_users", 10), ("step_users", 10)):
        if int(option(options, flag, default)) < 1:
            raise InputError(f"--{flag.replace('_', '-')}: must be 1 or more, got {option(options, flag, default)}")
    start, top = int(option(options, "start_users", 10)), int(option(options, "max_users", 100))
    if top < start:
        raise InputError(f"--max-users ({top}) must be at least --start-users ({start})")
    step_time, settle = float(option(options, "step_time", 30.0)), float(option(options, "settle_time", 10.0))
    if not 0 <= settle < step_time:
        raise InputError(
            f"--settle-time ({settle:g} s) must be 0 or more and shorter than --step-time ({step_time:g} s)"
        )
