"""Runs the open-workload pacing of users/common/pacing.py and reports how well the arrival rate was held.

Each process paces its share of --arrival-rate (its users over all users). Workers send their shortfall
counts to the master with every stats report; the ``arrival`` section of summary.json holds the merged
figures: starts scheduled, on time, late and dropped, lateness percentiles, and the achieved rate.
"""

from __future__ import annotations

from typing import Any

from locust import Events
from locust.runners import MasterRunner, WorkerRunner

from core.options import option
from plugins.output.run_folder import SUMMARY_SECTIONS
from users.common import pacing
from users.common.arrival import ShortfallCounter

MESSAGE_KEY = "chatswarm_arrival"

merged = ShortfallCounter(pacing.LATE_TOLERANCE_S)
"""On the master or a local runner: every process's counts. On a worker: counts not yet sent."""


WORKERS_OPTION = "arrival_workers"
"""Set by the master in parsed_options when a test starts; its spawn message carries it to every worker
before their own test start (a custom message could arrive before a new worker listens for it)."""


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    global merged
    merged = ShortfallCounter(pacing.LATE_TOLERANCE_S)
    pacing.stop()
    runner, options = environment.runner, environment.parsed_options
    if isinstance(runner, MasterRunner):
        # Users are spread evenly over the workers; the exact share follows when spawning completes.
        setattr(options, WORKERS_OPTION, max(runner.worker_count, 1))
    else:
        pacing.start(options, share=1 / max(int(getattr(options, WORKERS_OPTION, 1) or 1), 1))


def _on_init(environment: Any, **_kwargs: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        return

    @environment.events.spawning_complete.add_listener
    def _on_spawned(user_count: int, **_kwargs: Any) -> None:
        # A worker paces the share of the rate that its users are of all users (user_count is everyone's).
        if pacing.current() is not None:
            share = min(1.0, environment.runner.user_count / max(user_count, 1))
            pacing.start(environment.parsed_options, share)


def _collect(into: ShortfallCounter, pacer: pacing.Pacer | None) -> None:
    """Move a pacer's counts so far into ``into``."""
    if pacer is not None and pacer.counter.scheduled:
        into.merge_message(pacer.take_counts().to_message())


def _on_test_stop(**_kwargs: Any) -> None:
    _collect(merged, pacing.stop())  # on a worker, "merged" holds what its next report sends


def _send(data: dict[str, Any], **_kwargs: Any) -> None:
    global merged
    _collect(merged, pacing.current())
    if merged.scheduled:
        data[MESSAGE_KEY] = merged.to_message()
        merged = ShortfallCounter(pacing.LATE_TOLERANCE_S)


def _receive(data: dict[str, Any], **_kwargs: Any) -> None:
    if MESSAGE_KEY in data:
        merged.merge_message(data[MESSAGE_KEY])


def arrival_section(environment: Any, duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``arrival`` section, when an arrival rate was set."""
    options = environment.parsed_options
    rate = float(option(options, "arrival_rate", 0.0))
    if rate <= 0:
        return None
    figures: dict[str, Any] = {"target_rate_per_s": rate, "kind": option(options, "arrival_kind", "constant")}
    _collect(merged, pacing.current())  # a local runner's counts still on its pacer
    figures.update(merged.summary())
    return figures


SUMMARY_SECTIONS["arrival"] = arrival_section


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.test_start.add_listener(_on_test_start)
    events.init.add_listener(_on_init)
    events.test_stop.add_listener(_on_test_stop)
    events.report_to_master.add_listener(_send)
    events.worker_report.add_listener(_receive)
