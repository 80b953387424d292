"""requests.csv: one row per exchange, written while the test runs so nothing is lost if it stops early.

Rows are buffered and appended to the file every second by the master (or local runner); workers send
their rows to the master with each stats report. TTFT rows are left out: their figure is in the
ttft_ms column of the answer's row. An exchange the end of the test interrupted has a row of its own with
status ``cut short`` (users/common/in_flight.py).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

import gevent
from locust import Events

from core.redaction import redact
from plugins.metrics.merged import MergedOverWorkers
from plugins.output import run_folder
from users.common import records
from users.common.in_flight import CUT_SHORT, CutShort

logger = logging.getLogger("chatswarm")

COLUMNS = (
    "timestamp",
    "request_id",
    "user",
    "type",
    "name",
    "status",
    "response_time_ms",
    "ttft_ms",
    "e2e_ms",
    "output_tokens",
    "mean_itl_ms",
    "error",
)
FLUSH_INTERVAL_S = 1.0
"""How often buffered rows are appended to requests.csv."""

FLUSH_SLICE_ROWS = 500
"""Rows written between yields to the event loop (~0.4 ms of CSV formatting on this project's machine)."""

MAX_BUFFERED_ROWS = 200_000
"""Rows kept in memory between flushes or reports; beyond it rows are dropped and counted."""

MESSAGE_KEY = "chatswarm_rows"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def row_for(
    request_type: str, name: str, response_time: float | None, exception: Any, context: Any, start_time: Any
) -> tuple[Any, ...]:
    """One CSV row for a request event."""
    record = context.get(records.RECORD) if context else None
    stamp = datetime.fromtimestamp(start_time, UTC).isoformat(timespec="microseconds") if start_time else ""
    status = "failed" if exception else "ok"
    error = str(exception) if exception else ""
    if record is None:
        server_id = redact(context.get(records.REQUEST_ID, "")) if context else ""
        return (stamp, server_id, "", request_type, name, status, _ms(response_time), "", "", "", "", error)
    return (
        stamp,
        redact(record.request_id),  # the server's id, as it sent it: it could echo a secret
        record.user,
        request_type,
        name,
        status,
        _ms(response_time),
        _ms(record.ttft_ms),
        _ms(record.e2e_ms),
        record.output_tokens,
        _ms(record.mean_itl_ms),
        error,
    )


class RequestLog(MergedOverWorkers):
    """This Environment's requests.csv: rows buffered between flushes (master or local runner) or reports
    (worker), at most MAX_BUFFERED_ROWS; beyond it rows are dropped and counted."""

    message_key = MESSAGE_KEY

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.rows: list[tuple[Any, ...]] = []
        self.dropped = 0
        self.file: IO[str] | None = None
        self.writer: Any = None
        self.flusher: gevent.Greenlet | None = None

    def listen(self) -> None:
        events = self.environment.events
        events.request.add_listener(self.on_request)
        records.subscribe(self.environment, CutShort, self.on_cut_short)
        events.test_start.add_listener(self.on_test_start)
        self.listen_for_reports()
        events.quitting.add_listener(self.on_quitting)

    def keep(self, rows: list[tuple[Any, ...]]) -> None:
        room = MAX_BUFFERED_ROWS - len(self.rows)
        self.rows.extend(rows[:room])
        self.dropped += max(0, len(rows) - room)

    def flush(self, pause: Callable[[], Any] | None = None) -> None:
        """Append the buffered rows to requests.csv, FLUSH_SLICE_ROWS at a time with ``pause()`` between slices
        (while the test runs, gevent.sleep: a second of 20,000 rows never holds the loop for more than ~1 ms).
        Rows leave the buffer as they are written, so a flush stopped between slices loses none."""
        if self.writer is None or self.file is None:
            return
        rows = self.rows
        while rows:
            batch = rows[:FLUSH_SLICE_ROWS]
            del rows[:FLUSH_SLICE_ROWS]
            self.writer.writerows(batch)
            if rows and pause is not None:
                pause()
        self.file.flush()

    def _flush_forever(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL_S)
            self.flush(pause=gevent.sleep)

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        exception: Any = None,
        context: Any = None,
        start_time: Any = None,
        **_kwargs: Any,
    ) -> None:
        if request_type != "TTFT":
            self.keep([row_for(request_type, name, response_time, exception, context, start_time)])

    def on_cut_short(self, record: CutShort) -> None:
        stamp = datetime.fromtimestamp(record.started_at, UTC).isoformat(timespec="microseconds")
        elapsed = _ms(record.elapsed_ms)
        self.keep([(stamp, "", "", record.request_type, record.name, "cut short", elapsed, "", "", "", "", CUT_SHORT)])

    def on_test_start(self, **_kwargs: Any) -> None:
        folder = run_folder.current(self.environment)
        if folder is None or self.file is not None:
            return
        self.file = (folder.path / "requests.csv").open("w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.file)
        self.writer.writerow(COLUMNS)
        self.flusher = gevent.spawn(self._flush_forever)

    def take_message(self) -> dict[str, Any] | None:
        if not (self.rows or self.dropped):
            return None
        message = {"rows": list(self.rows), "dropped": self.dropped}
        self.rows.clear()
        self.dropped = 0
        return message

    def merge_message(self, message: dict[str, Any], client_id: str) -> None:
        self.keep([tuple(row) for row in message["rows"]])
        self.dropped += message["dropped"]

    def on_quitting(self, **_kwargs: Any) -> None:
        self.close()

    def close(self) -> None:
        """Write what is buffered and close requests.csv (the next test start opens one in its own folder)."""
        if self.flusher is not None:
            self.flusher.kill(block=False)
            self.flusher = None
        self.flush()
        if self.file is not None:
            self.file.close()
            self.file = self.writer = None
        if self.dropped:
            logger.warning("requests.csv: %d rows were dropped because the buffer was full", self.dropped)


def _on_init(environment: Any, **_kwargs: Any) -> None:
    records.state(environment, RequestLog, lambda: RequestLog(environment)).listen()


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
