"""The end of a run, in order: users stopped first, their exchanges in flight recorded, then the reports.

At ``-t`` Locust stops the runner and only then quits, so every plugin writes after the users are gone. On
SIGTERM or Ctrl-C it fires ``quitting`` at once, while users still run: the run folder would be written
while requests still reach the target, and exchanges in flight would vanish. Quitting listeners run in
reverse order of adding, so this plugin, registered last and adding its listeners at ``init`` (after the
runner's own), runs first: it marks the run interrupted, then stops the users (each records its exchange in
flight as cut short, users/common/in_flight.py) and, on a master, waits for the workers to stop theirs and
send their last report (they report every 3 s).
Only then do the other plugins write.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent.event
from locust import Events
from locust.runners import (
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    WORKER_REPORT_INTERVAL,
    MasterRunner,
    WorkerRunner,
)

from plugins.output import run_folder

logger = logging.getLogger("chatswarm")

RUNNING_STATES = (STATE_SPAWNING, STATE_RUNNING)


def _stop_users_first(environment: Any, **_kwargs: Any) -> None:
    """Stop the users (a master: its workers' users, then wait for their last rows) before anything is written."""
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner) or runner.state not in RUNNING_STATES:
        return
    logger.info("Stopping the users before writing the run folder")
    if not isinstance(runner, MasterRunner):
        runner.stop()
        return
    waiting = {client.id for client in runner.clients.all if client.state != STATE_MISSING}
    reported = gevent.event.Event()

    def on_report(client_id: str, **_kwargs: Any) -> None:
        # A worker that reported it stopped is gone from the running ones: this report holds its last rows.
        if client_id not in runner.clients or runner.clients[client_id].state not in RUNNING_STATES:
            waiting.discard(client_id)
            if not waiting:
                reported.set()

    environment.events.worker_report.add_listener(on_report)
    runner.stop()  # returns once the workers report no users
    reported.wait(timeout=WORKER_REPORT_INTERVAL + 1)
    environment.events.worker_report.remove_listener(on_report)


def _note_interrupted(environment: Any, **_kwargs: Any) -> None:
    """Mark the run interrupted when Locust quits (SIGTERM, Ctrl-C) while the test runs."""
    folder = run_folder.current(environment)
    if folder is not None and folder.started_at is not None and folder.stopped_at is None:
        folder.interrupted = True


def _on_init(environment: Any, **_kwargs: Any) -> None:
    # Reverse order: _note_interrupted runs first, then _stop_users_first, then every other quitting listener.
    environment.events.quitting.add_listener(_stop_users_first)
    environment.events.quitting.add_listener(_note_interrupted)


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
