"""Runs the open-workload pacing of users/common/pacing.py and reports how well the arrival rate was held.

Each process paces its share of --arrival-rate (its users over all users). Workers send their shortfall
counts to the master with every stats report; the ``arrival`` section of summary.json holds the merged
figures: starts scheduled, on time, late and dropped, lateness percentiles, and the achieved rate.
"""

from __future__ import annotations

from typing import Any

from locust import Events
from locust.runners import MasterRunner, WorkerRunner

from plugins.metrics.merged import MergedOverWorkers
from plugins.output.run_folder import add_section
from users.common import pacing, records
from users.common.arrival import ShortfallCounter

MESSAGE_KEY = "chatswarm_arrival"

WORKERS_OPTION = "arrival_workers"
"""Set by the master in parsed_options when a test starts; its spawn message carries it to every worker
before their own test start (a custom message could arrive before a new worker listens for it)."""


class ArrivalReport(MergedOverWorkers):
    """This Environment's shortfall counts: every process's on the master or a local runner; on a worker, the
    counts its next report sends."""

    message_key = MESSAGE_KEY

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.merged = ShortfallCounter(pacing.LATE_TOLERANCE_S)

    def listen(self) -> None:
        events = self.environment.events
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        self.listen_for_reports()
        if isinstance(self.environment.runner, WorkerRunner):
            events.spawning_complete.add_listener(self.on_spawned)

    def on_test_start(self, **_kwargs: Any) -> None:
        environment = self.environment
        self.merged = ShortfallCounter(pacing.LATE_TOLERANCE_S)
        pacing.stop(environment)
        runner, options = environment.runner, environment.parsed_options
        if isinstance(runner, MasterRunner):
            # Users are spread evenly over the workers; the exact share follows when spawning completes.
            setattr(options, WORKERS_OPTION, max(runner.worker_count, 1))
        else:
            pacing.start(environment, share=1 / max(int(getattr(options, WORKERS_OPTION, 1) or 1), 1))

    def on_spawned(self, user_count: int, **_kwargs: Any) -> None:
        # A worker paces the share of the rate that its users are of all users (user_count is everyone's).
        environment = self.environment
        if pacing.current(environment) is not None:
            share = min(1.0, environment.runner.user_count / max(user_count, 1))
            pacing.start(environment, share)

    def collect(self, pacer: pacing.Pacer | None) -> None:
        """Move a pacer's counts so far into the merged counts."""
        if pacer is not None and pacer.counter.scheduled:
            self.merged.merge_message(pacer.take_counts().to_message())

    def on_test_stop(self, **_kwargs: Any) -> None:
        self.collect(pacing.stop(self.environment))  # on a worker, "merged" holds what its next report sends

    def take_message(self) -> dict[str, Any] | None:
        self.collect(pacing.current(self.environment))
        taken, self.merged = self.merged, ShortfallCounter(pacing.LATE_TOLERANCE_S)
        return taken.to_message() if taken.scheduled else None

    def merge_message(self, message: dict[str, Any], client_id: str) -> None:
        self.merged.merge_message(message)


def _on_init(environment: Any, **_kwargs: Any) -> None:
    records.state(environment, ArrivalReport, lambda: ArrivalReport(environment)).listen()


def arrival_section(environment: Any, duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``arrival`` section, when an arrival rate was set."""
    settings = pacing.PacingSettings.read(environment.parsed_options)
    rate = settings.arrival_rate
    report = records.existing(environment, ArrivalReport)
    if rate <= 0 or report is None:
        return None
    figures: dict[str, Any] = {"target_rate_per_s": rate, "kind": settings.arrival_kind}
    report.collect(pacing.current(environment))  # a local runner's counts still on its pacer
    figures.update(report.merged.summary())
    return figures


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    add_section("arrival", arrival_section)
