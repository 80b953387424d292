"""The plenary report: delivery completeness and fan-out latency of group chats, merged across workers.

PlenaryUsers publish what they send and receive as records (users/common/records.py); workers send their figures
to the master with each stats report (send times, membership spells, counters, fan-out histograms),
and the master works out how many receptions were due. The result is the ``plenary`` section of
summary.json: ``expected``, ``delivered``, ``lost``, ``duplicates``, ``out_of_order`` and fan-out
percentiles. When a test starts, each worker asks the master how many workers there are, so each takes
its own slice of the usernames (--user-range-min/--user-range-max).
"""

from __future__ import annotations

import logging
from typing import Any

from locust import Events
from locust.runners import MasterRunner, WorkerRunner

from core.errors import InputError
from plugins.metrics.merged import MergedOverWorkers
from plugins.output.run_folder import add_section
from users.common import records
from users.plenary.plenary_metrics import Joined, Left, MessageSent, PlenaryStats, Reception
from users.plenary.plenary_settings import PlenarySettings, user_range
from users.plenary.plenary_user import user_numbers

logger = logging.getLogger("chatswarm")

MESSAGE_KEY = "chatswarm_plenary"
ASK_MESSAGE = "chatswarm_plenary_ask"
"""Worker → master when its test starts: how many workers share the user range? (Asked rather than
broadcast by the master: a worker whose init listeners have not run yet would miss a broadcast.)"""

SLICE_MESSAGE = "chatswarm_plenary_workers"
"""Master → the asking worker: how many workers share the user range."""


class PlenaryReport(MergedOverWorkers):
    """This Environment's plenary figures: the run's on the master or a local runner; on a worker, what its next
    report sends."""

    message_key = MESSAGE_KEY

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.stats = PlenaryStats()

    def listen(self) -> None:
        environment = self.environment  # self.stats is replaced after each report: look it up on every record
        records.subscribe(environment, MessageSent, lambda record: self.stats.add_sent(record))
        records.subscribe(environment, Joined, lambda record: self.stats.add_joined(record))
        records.subscribe(environment, Left, lambda record: self.stats.add_left(record))
        records.subscribe(environment, Reception, lambda record: self.stats.add_reception(record))
        environment.events.test_start.add_listener(self.on_test_start)
        self.listen_for_reports()

    def on_test_start(self, **_kwargs: Any) -> None:
        environment = self.environment
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            user_numbers.forget()
            _listen_for_slices(environment)
            runner.send_message(ASK_MESSAGE)
            return
        self.stats = PlenaryStats()
        if not isinstance(runner, MasterRunner) and environment.parsed_options is not None:
            _configure_numbers(environment.parsed_options, 0, 1)

    def take_message(self) -> dict[str, Any] | None:
        taken, self.stats = self.stats, PlenaryStats()
        return None if taken.empty else taken.to_message()

    def merge_message(self, message: dict[str, Any], client_id: str) -> None:
        self.stats.merge_message(message)


def report(environment: Any) -> PlenaryReport:
    """This Environment's plenary figures."""
    return records.state(environment, PlenaryReport, lambda: PlenaryReport(environment))


def _configure_numbers(options: Any, worker_index: int, workers: int) -> None:
    try:
        user_numbers.configure(*user_range(options, worker_index, workers))
    except InputError as error:
        logger.error("%s; this worker's plenary users cannot start", error)
        user_numbers.configure(0, -1)


def _listen_for_slices(environment: Any) -> None:
    """On a worker: configure the user range when the master says how many workers share it."""
    runner = environment.runner
    if SLICE_MESSAGE in runner.custom_messages:
        return

    def _on_workers(msg: Any, **_kwargs: Any) -> None:
        _configure_numbers(environment.parsed_options, runner.worker_index, int(msg.data["workers"]))

    runner.register_message(SLICE_MESSAGE, _on_workers)


def _on_init(environment: Any, **_kwargs: Any) -> None:
    report(environment).listen()
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _listen_for_slices(environment)
    elif isinstance(runner, MasterRunner):

        def _on_ask(msg: Any, **_kwargs: Any) -> None:
            runner.send_message(SLICE_MESSAGE, {"workers": max(runner.worker_count, 1)}, client_id=msg.node_id)

        runner.register_message(ASK_MESSAGE, _on_ask)


def plenary_section(environment: Any, _duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``plenary`` section, when any plenary user ran."""
    stats = report(environment).stats
    if stats.empty:
        return None
    settings = PlenarySettings.read(environment.parsed_options)
    section: dict[str, Any] = {
        "protocol": settings.plenary_protocol,
        "rooms": settings.rooms,
    }
    section.update(stats.summary(settings.drain_time))
    return section


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    add_section("plenary", plenary_section)
