"""The WebSocket report: error rates by class, and latency and error rates against open connections.

Every process that runs users samples its open WebSockets four times a second and files WebSocket events
(``WS`` connects and lost connections, ``WSR`` replies, ``FANOUT`` receptions) per second; workers send
theirs to the master with each stats report. The ``websocket`` section of summary.json holds the
failures by class (client, server, unexpected) with their rates and ``by_connections``: per connection
level, reply and fan-out latency (mean, p95, max) and the error rates. ``websocket.png`` in the run
folder plots them: mean latency, max latency, error rate, client, server and unexpected error rates
against connections.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gevent
from locust import Events
from locust.runners import MasterRunner, WorkerRunner

from plugins.output import run_folder
from plugins.output.run_folder import SUMMARY_SECTIONS
from users.ws.ws_connection import WebSocketConnection, failure_class
from users.ws.ws_metrics import COUNTED_TYPES, LATENCY_SERIES, ConnectionTimeline

logger = logging.getLogger("chatswarm")

MESSAGE_KEY = "chatswarm_websocket"
SAMPLE_INTERVAL_S = 0.25
"""How often each process samples its open connections; a second counts the last sample taken in it."""

WATCHED_TYPES = frozenset(COUNTED_TYPES) | frozenset(LATENCY_SERIES)
"""Request types the WebSocket report files."""

PLOT_FILE = "websocket.png"
LOCAL = "local"

timeline = ConnectionTimeline()
"""The run's figures on the master or a local runner; on a worker, what its next report sends."""

_sampler: gevent.Greenlet | None = None


def _sample_forever() -> None:
    while True:
        timeline.sample(LOCAL, int(time.time()), WebSocketConnection.open_count)
        gevent.sleep(SAMPLE_INTERVAL_S)


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    global timeline, _sampler
    if not isinstance(environment.runner, WorkerRunner):
        timeline = ConnectionTimeline()
    if not isinstance(environment.runner, MasterRunner) and _sampler is None:
        _sampler = gevent.spawn(_sample_forever)


def _on_test_stop(**_kwargs: Any) -> None:
    global _sampler
    if _sampler is not None:
        _sampler.kill(block=False)
        _sampler = None


def _on_request(
    request_type: str, response_time: float | None, exception: Any = None, start_time: float | None = None, **_: Any
) -> None:
    if request_type not in WATCHED_TYPES:
        return  # every run's requests pass here: leave the others at once
    now = time.time()
    second = int(now if request_type == "FANOUT" or start_time is None else start_time)
    timeline.add(second, request_type, response_time, failure_class(exception))
    if request_type == "WS" and _sampler is not None:  # a connection opened or closed: count it at once
        timeline.sample(LOCAL, int(now), WebSocketConnection.open_count)


def _send(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    global timeline
    if timeline.seconds or timeline.samples:
        data[MESSAGE_KEY] = timeline.to_message()
        timeline = ConnectionTimeline()


def _receive(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    if MESSAGE_KEY in data:
        timeline.merge_message(data[MESSAGE_KEY], process=client_id)


def websocket_section(_environment: Any, _duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``websocket`` section, when any WebSocket event happened (also draws the plot)."""
    if not timeline.events:
        return None
    section = timeline.totals()
    section["by_connections"] = rows = timeline.by_connections()
    if run_folder.current is not None:
        plot = write_plot(rows, run_folder.current.path / PLOT_FILE)
        if plot is not None:
            section["plot"] = plot.name
    return section


SUMMARY_SECTIONS["websocket"] = websocket_section


PANELS = (
    ("mean latency (ms)", "mean_ms"),
    ("max latency (ms)", "max_ms"),
    ("error rate", "error_rate"),
    ("client error rate", "client_error_rate"),
    ("server error rate", "server_error_rate"),
    ("unexpected error rate", "unexpected_error_rate"),
)


def write_plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Draw latency and the error rates against open connections into ``path``; None when it cannot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return None
    connections = [row["connections"] for row in rows]
    figure, axes = pyplot.subplots(2, 3, figsize=(13, 7), sharex=True)
    try:
        for axis, (title, key) in zip(axes.flat, PANELS, strict=True):
            if key.endswith("_ms"):
                for series in ("reply", "fanout"):
                    values = [row[f"{series}_{key}"] for row in rows]
                    if any(value is not None for value in values):
                        axis.plot(connections, _gaps(values), marker="o", markersize=3, label=series)
                if axis.lines:
                    axis.legend(fontsize="small")
            else:
                axis.plot(connections, _gaps([row[key] for row in rows]), marker="o", markersize=3, color="tab:red")
                axis.set_ylim(bottom=0)
            axis.set_title(title)
            axis.grid(alpha=0.3)
        for axis in axes[1]:
            axis.set_xlabel("open connections")
        figure.suptitle("WebSocket latency and errors vs connections")
        figure.tight_layout()
        figure.savefig(path, dpi=80)
    except Exception as error:  # a plotting problem must not cost the run its summary
        logger.warning("websocket.png not written: %s", error)
        return None
    finally:
        pyplot.close(figure)
    return path


def _gaps(values: list[float | None]) -> list[float]:
    return [float("nan") if value is None else value for value in values]


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.request.add_listener(_on_request)
    events.report_to_master.add_listener(_send)
    events.worker_report.add_listener(_receive)
