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
from dataclasses import dataclass
from typing import Any

from core.errors import InputError
from core.settings import Settings, setting
from users.common import records
from users.common.arrival import KINDS, ArrivalSchedule, ShortfallCounter

LATE_TOLERANCE_S = 0.01
"""Starts later than this are counted late (below it is timer jitter)."""


@dataclass(frozen=True)
class PacingSettings(Settings):
    """The pacing options: the arrival rate, its kind and ramp, and how late a start may run."""

    arrival_rate: float = setting(0.0, "Requests started per second (0 = closed loop)", web_ui=True)
    arrival_kind: str = setting("constant", "Evenly spaced or Poisson starts", choices=KINDS, web_ui=True)
    arrival_ramp_to: float = setting(-1.0, "Rate to ramp to (-1 = no ramp)", web_ui=True)
    arrival_ramp_time: float = setting(0.0, "Seconds the ramp takes", web_ui=True)
    arrival_max_lateness: float = setting(1.0, "Seconds a start may run late, then dropped", web_ui=True)

    def check(self) -> None:
        if self.arrival_max_lateness <= 0:
            raise InputError("--arrival-max-lateness: must be greater than 0")
        self.schedule(share=1.0, start=0.0)

    def schedule(self, share: float, start: float) -> ArrivalSchedule | None:
        """This process's arrival schedule (its share of the rate), or None without --arrival-rate."""
        if self.arrival_rate < 0:
            raise InputError(f"--arrival-rate: must be 0 (off) or more, got {self.arrival_rate:g}")
        if self.arrival_rate == 0:
            return None
        return ArrivalSchedule(
            self.arrival_rate * share,
            kind=self.arrival_kind,
            ramp_to=self.arrival_ramp_to * share if self.arrival_ramp_to >= 0 else None,
            ramp_time_s=self.arrival_ramp_time,
            start=start,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the pacing options."""
    PacingSettings.add_arguments(parser)


def check_options(options: Any) -> None:
    """Raise InputError for bad pacing options."""
    PacingSettings.read(options)


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
    settings = PacingSettings.read(options)
    schedule = settings.schedule(share, start=begin)
    if schedule is None:
        pacing.pacer = None
    elif pacer is None:
        pacing.pacer = Pacer(schedule, settings.arrival_max_lateness, share)
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
