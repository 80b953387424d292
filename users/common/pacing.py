"""Open-workload pacing: with --arrival-rate, users start requests on a shared schedule, not after think time.

Requests then start at the target rate (constant or Poisson, optionally ramping) whatever the server
does, using the running users as a pool: a free user takes the next due start. When every user is busy,
starts run late; later than --arrival-max-lateness they are dropped. Both count as shortfall, as with
k6's arrival-rate executors. Latency is reported from the *scheduled* start, so a slow server cannot
flatter its own numbers by slowing the load down (coordinated omission).

Each Locust process paces its share of the rate: its users / all users (plugins/metrics/arrival_report.py sets
the share when spawning completes).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from core.errors import InputError
from core.options import add_option, option
from users.common import records
from users.common.arrival import KINDS, ArrivalSchedule, ShortfallCounter

LATE_TOLERANCE_S = 0.01
"""Starts later than this are counted late (below it is timer jitter)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the pacing options."""
    add_option(parser, "--arrival-rate", type=float, default=0.0, help="Requests started per second (0 = closed loop)")
    add_option(parser, "--arrival-kind", default="constant", choices=KINDS, help="Evenly spaced or Poisson starts")
    add_option(parser, "--arrival-ramp-to", type=float, default=-1.0, help="Rate to ramp to (-1 = no ramp)")
    add_option(parser, "--arrival-ramp-time", type=float, default=0.0, help="Seconds the ramp takes")
    add_option(
        parser, "--arrival-max-lateness", type=float, default=1.0, help="Seconds a start may run late, then dropped"
    )


def check_options(options: Any) -> None:
    """Raise InputError for bad pacing options."""
    if float(option(options, "arrival_max_lateness", 1.0)) <= 0:
        raise InputError("--arrival-max-lateness: must be greater than 0")
    schedule_for(options, share=1.0, start=0.0)


def schedule_for(options: Any, share: float, start: float) -> ArrivalSchedule | None:
    """This process's arrival schedule (its share of the rate), or None without --arrival-rate."""
    rate = float(option(options, "arrival_rate", 0.0))
    if rate < 0:
        raise InputError(f"--arrival-rate: must be 0 (off) or more, got {rate:g}")
    if rate == 0:
        return None
    ramp_to = float(option(options, "arrival_ramp_to", -1.0))
    return ArrivalSchedule(
        rate * share,
        kind=option(options, "arrival_kind", "constant"),
        ramp_to=ramp_to * share if ramp_to >= 0 else None,
        ramp_time_s=float(option(options, "arrival_ramp_time", 0.0)),
        start=start,
    )


class Pacer:
    """Hands out scheduled start times to the users of one process and accounts for late and dropped ones."""

    def __init__(self, schedule: ArrivalSchedule, max_lateness_s: float, share: float = 1.0) -> None:
        self.schedule = schedule
        self.share = share
        self.max_lateness_s = max_lateness_s
        self.counter = ShortfallCounter(LATE_TOLERANCE_S)
        self.counter.open(time.time())

    def take_counts(self) -> ShortfallCounter:
        """The counts so far, closed now; the pacer goes on counting afresh from this moment."""
        now = time.time()
        counts, self.counter = self.counter, ShortfallCounter(LATE_TOLERANCE_S)
        counts.close(now)
        self.counter.open(now)
        return counts

    def claim(self, now: float) -> float:
        """The next due start for a free user; starts already too late are dropped on the way."""
        due = self.schedule.next_due()
        while due < now - self.max_lateness_s:
            self.counter.drop(due)
            due = self.schedule.next_due()
        return due

    def started(self, scheduled_at: float, now: float) -> float:
        """Note that a request scheduled for ``scheduled_at`` starts now; returns its lateness in seconds."""
        return self.counter.record(scheduled_at, now)


class Pacing:
    """This Environment's pacer, while --arrival-rate is on and a test runs."""

    pacer: Pacer | None = None


def current(environment: Any) -> Pacer | None:
    """This process's pacer, when --arrival-rate is on and a test is running."""
    return records.state(environment, Pacing).pacer


def start(environment: Any, share: float) -> None:
    """Pace ``share`` of the rate from now on.

    A pacer already running keeps its counts, and its new schedule carries on where the old one stands:
    starts the users have already claimed are not handed out twice.
    """
    options, pacing = environment.parsed_options, records.state(environment, Pacing)
    pacer = pacing.pacer
    if pacer is not None and abs(pacer.share - share) < 1e-9:
        return
    begin = time.monotonic() if pacer is None else min(pacer.schedule.peek(), time.monotonic() + 1.0)
    schedule = schedule_for(options, share, start=begin)
    if schedule is None:
        pacing.pacer = None
    elif pacer is None:
        pacing.pacer = Pacer(schedule, float(option(options, "arrival_max_lateness", 1.0)), share)
    else:
        pacer.schedule, pacer.share = schedule, share


def stop(environment: Any) -> Pacer | None:
    """End pacing: starts that fell due but no user took count as dropped. Returns the finished pacer."""
    pacing = records.state(environment, Pacing)
    pacer, pacing.pacer = pacing.pacer, None
    if pacer is not None:
        for due in pacer.schedule.take_due(time.monotonic()):
            pacer.counter.drop(due)
    return pacer
