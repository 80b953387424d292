"""Who generated the load in a distributed run, and which workers were lost on the way.

On the master only. Every stats report a worker sends is counted against it, so summary.json's ``workers``
section shows each worker's requests and failures. A worker that stops sending heartbeats (killed, crashed,
cut off) is marked lost: the master goes on with the others, the numbers the lost worker sent before are
kept (they are already in the merged statistics), and the run's notes say so. What it measured after its
last report (at most one report interval, 3 s) is gone with it. A worker that quits while the test runs
(stopped on its machine) counts as lost too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import gevent
from locust import Events
from locust.runners import STATE_MISSING, STATE_RUNNING, STATE_SPAWNING, MasterRunner

from core.metric_book import MetricBook
from plugins.metrics import book_keeper
from plugins.output.run_folder import add_note, add_section
from users.common import records

logger = logging.getLogger("chatswarm")

WATCH_EVERY_S = 1.0
"""How often the master looks for workers that went missing (Locust's heartbeat interval)."""


@dataclass
class WorkerRecord:
    """What one worker contributed."""

    index: int
    requests: int = 0
    failures: int = 0
    lost_after_s: float | None = None


class WorkerBook:
    """The master's book of workers for the current test."""

    def __init__(self) -> None:
        self.records: dict[str, WorkerRecord] = {}
        self.started_at = time.monotonic()

    def record(self, client_id: str, index: int) -> WorkerRecord:
        if client_id not in self.records:
            self.records[client_id] = WorkerRecord(index=index)
        return self.records[client_id]

    def count_report(self, client_id: str, index: int, data: dict[str, Any]) -> None:
        """Add one stats report's exchanges and failures to its worker (as summary.json's totals count them)."""
        record = self.record(client_id, index)
        part = data.get(book_keeper.MESSAGE_KEY)
        for row in MetricBook.from_message(part).exchange_rows() if part else ():
            record.requests += row.count
            record.failures += row.failures

    def mark_lost(self, runner: MasterRunner) -> list[tuple[str, WorkerRecord]]:
        """Mark the workers that stopped during the test: the master reports them missing (killed, cut off),
        or they quit while the test still ran (stopped on their machine). Returns the newly lost ones."""
        missing = {client.id for client in runner.clients.all if client.state == STATE_MISSING}
        if runner.state in (STATE_RUNNING, STATE_SPAWNING):
            missing |= set(self.records) - set(runner.clients)
        newly_lost = []
        for client_id in missing:
            record = self.record(client_id, runner.get_worker_index(client_id))
            if record.lost_after_s is None:
                record.lost_after_s = round(time.monotonic() - self.started_at, 1)
                newly_lost.append((client_id, record))
        return newly_lost

    def section(self, expected: int) -> dict[str, Any]:
        """summary.json's ``workers`` section."""
        ordered = sorted(self.records.items(), key=lambda item: item[1].index)
        return {
            "expected": expected,
            "seen": len(self.records),
            "lost": sum(1 for _, r in ordered if r.lost_after_s is not None),
            "by_worker": [{"id": client_id, **asdict(record)} for client_id, record in ordered],
        }


class WorkerWatch:
    """On a master: the book of workers for the current test, and the greenlet that looks for lost ones."""

    def __init__(self, environment: Any, master: MasterRunner) -> None:
        self.environment = environment
        self.master = master
        self.book = WorkerBook()

    def listen(self) -> None:
        events = self.environment.events
        events.test_start.add_listener(self.on_test_start)
        events.worker_report.add_listener(self.on_worker_report)
        gevent.spawn(self.watch)

    def watch(self) -> None:
        while True:
            gevent.sleep(WATCH_EVERY_S)
            for client_id, record in self.book.mark_lost(self.master):
                message = (
                    f"worker {record.index} ({client_id}) was lost {record.lost_after_s:.0f} s into the run; "
                    f"the {record.requests} requests it reported are kept, its last few seconds are not"
                )
                logger.warning(message[0].upper() + message[1:])
                add_note(self.environment, message)

    def on_test_start(self, **_kwargs: Any) -> None:
        self.book = WorkerBook()
        for client in self.master.clients.all:
            self.book.record(client.id, self.master.get_worker_index(client.id))

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        self.book.count_report(client_id, self.master.get_worker_index(client_id), data)


def _on_init(environment: Any, runner: Any, **_kwargs: Any) -> None:
    if isinstance(runner, MasterRunner):
        records.state(environment, WorkerWatch, lambda: WorkerWatch(environment, runner)).listen()


def workers_section(environment: Any, _duration_s: float) -> dict[str, Any] | None:
    """The ``workers`` section, on a master only."""
    watch = records.existing(environment, WorkerWatch)
    if watch is None:
        return None
    watch.book.mark_lost(watch.master)
    options = environment.parsed_options
    expected = int(options.expect_workers) if options.headless else len(watch.book.records)  # the web UI waits for none
    return watch.book.section(expected)


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    add_section("workers", workers_section)
