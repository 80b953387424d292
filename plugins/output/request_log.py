"""requests.csv: one row per exchange, written while the test runs so nothing is lost if it stops early.

Rows are buffered and appended to the file every second by the master (or local runner); workers send
their rows to the master with each stats report. TTFT rows are left out: their figure is in the
ttft_ms column of the answer's row.
"""

from __future__ import annotations

import csv
import logging
from datetime import UTC, datetime
from typing import IO, Any

import gevent
from locust import Events
from locust.runners import WorkerRunner

from plugins.output import run_folder
from users.llm.streaming_chat import STREAM_RECORD

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

MAX_BUFFERED_ROWS = 200_000
"""Rows kept in memory between flushes or reports; beyond it rows are dropped and counted."""

MESSAGE_KEY = "chatswarm_rows"

_rows: list[tuple[Any, ...]] = []
_dropped = 0
_file: IO[str] | None = None
_writer: Any = None
_flusher: gevent.Greenlet | None = None


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def row_for(
    request_type: str, name: str, response_time: float | None, exception: Any, context: Any, start_time: Any
) -> tuple[Any, ...]:
    """One CSV row for a request event."""
    record = context.get(STREAM_RECORD) if context else None
    stamp = datetime.fromtimestamp(start_time, UTC).isoformat(timespec="microseconds") if start_time else ""
    status = "failed" if exception else "ok"
    error = str(exception) if exception else ""
    if record is None:
        return (stamp, "", "", request_type, name, status, _ms(response_time), "", "", "", "", error)
    return (
        stamp,
        record.request_id,
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


def _keep(rows: list[tuple[Any, ...]]) -> None:
    global _dropped
    room = MAX_BUFFERED_ROWS - len(_rows)
    _rows.extend(rows[:room])
    _dropped += max(0, len(rows) - room)


def flush() -> None:
    """Append the buffered rows to requests.csv."""
    if _writer is None or not _rows:
        return
    _writer.writerows(_rows)
    _rows.clear()
    _file.flush()


def _flush_forever() -> None:
    while True:
        gevent.sleep(FLUSH_INTERVAL_S)
        flush()


def _on_request(
    request_type: str,
    name: str,
    response_time: float | None,
    exception: Any = None,
    context: Any = None,
    start_time: Any = None,
    **_kwargs: Any,
) -> None:
    if request_type != "TTFT":
        _keep([row_for(request_type, name, response_time, exception, context, start_time)])


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    global _file, _writer, _flusher
    if isinstance(environment.runner, WorkerRunner) or run_folder.current is None or _file is not None:
        return
    _file = (run_folder.current.path / "requests.csv").open("w", newline="", encoding="utf-8")
    _writer = csv.writer(_file)
    _writer.writerow(COLUMNS)
    _flusher = gevent.spawn(_flush_forever)


def _send(data: dict[str, Any], **_kwargs: Any) -> None:
    global _dropped
    if _rows or _dropped:
        data[MESSAGE_KEY] = {"rows": list(_rows), "dropped": _dropped}
        _rows.clear()
        _dropped = 0


def _receive(data: dict[str, Any], **_kwargs: Any) -> None:
    global _dropped
    if MESSAGE_KEY in data:
        _keep([tuple(row) for row in data[MESSAGE_KEY]["rows"]])
        _dropped += data[MESSAGE_KEY]["dropped"]


def _on_quitting(**_kwargs: Any) -> None:
    global _file, _writer
    if _flusher is not None:
        _flusher.kill(block=False)
    flush()
    if _file is not None:
        _file.close()
        _file = _writer = None
    if _dropped:
        logger.warning("requests.csv: %d rows were dropped because the buffer was full", _dropped)


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.request.add_listener(_on_request)
    events.test_start.add_listener(_on_test_start)
    events.report_to_master.add_listener(_send)
    events.worker_report.add_listener(_receive)
    events.quitting.add_listener(_on_quitting)
