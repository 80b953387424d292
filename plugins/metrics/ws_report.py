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
from typing import Any

import gevent
from locust import Events
from locust.runners import MasterRunner, WorkerRunner

from plugins.metrics.merged import MergedOverWorkers
from plugins.output import run_folder
from users.common import records
from users.ws.ws_failures import failure_class
from users.ws.ws_metrics import COUNTED_TYPES, LATENCY_SERIES, ConnectionsChanged, ConnectionTimeline

logger = logging.getLogger("chatswarm")

MESSAGE_KEY = "chatswarm_websocket"
SAMPLE_INTERVAL_S = 0.25
"""How often each process samples its open connections; a second counts the last sample taken in it."""

WATCHED_TYPES = frozenset(COUNTED_TYPES) | frozenset(LATENCY_SERIES)
"""Request types the WebSocket report files."""

LOCAL = "local"


class WebSocketReport(MergedOverWorkers):
    """This Environment's WebSocket figures: the run's on the master or a local runner; on a worker, what its
    next report sends. Processes that run users sample their open connections while a test runs."""

    message_key = MESSAGE_KEY

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.timeline = ConnectionTimeline()
        self.open_connections = 0
        self.sampler: gevent.Greenlet | None = None

    def listen(self) -> None:
        events = self.environment.events
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        events.request.add_listener(self.on_request)
        self.listen_for_reports()
        records.subscribe(self.environment, ConnectionsChanged, self.on_connections_changed)

    def _sample_forever(self) -> None:
        while True:
            self.timeline.sample(LOCAL, int(time.time()), self.open_connections)
            gevent.sleep(SAMPLE_INTERVAL_S)

    def on_test_start(self, **_kwargs: Any) -> None:
        runner = self.environment.runner
        if not isinstance(runner, WorkerRunner):
            self.timeline = ConnectionTimeline()
        if not isinstance(runner, MasterRunner) and self.sampler is None:
            self.sampler = gevent.spawn(self._sample_forever)

    def on_test_stop(self, **_kwargs: Any) -> None:
        if self.sampler is not None:
            self.sampler.kill(block=False)
            self.sampler = None

    def on_connections_changed(self, change: ConnectionsChanged) -> None:
        self.open_connections += change.delta
        if self.sampler is not None:  # a connection opened or closed: count it at once
            self.timeline.sample(LOCAL, int(time.time()), self.open_connections)

    def on_request(
        self,
        request_type: str,
        response_time: float | None,
        exception: Any = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        if request_type not in WATCHED_TYPES:
            return  # every run's requests pass here: leave the others at once
        second = int(time.time() if request_type == "FANOUT" or start_time is None else start_time)
        self.timeline.add(second, request_type, response_time, failure_class(exception))

    def take_message(self) -> dict[str, Any] | None:
        taken, self.timeline = self.timeline, ConnectionTimeline()
        return taken.to_message() if taken.seconds or taken.samples else None

    def merge_message(self, message: dict[str, Any], client_id: str) -> None:
        self.timeline.merge_message(message, process=client_id)


def _on_init(environment: Any, **_kwargs: Any) -> None:
    records.state(environment, WebSocketReport, lambda: WebSocketReport(environment)).listen()


def websocket_section(environment: Any, _duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``websocket`` section, when any WebSocket event happened (also draws the plot)."""
    report = records.existing(environment, WebSocketReport)
    if report is None or not report.timeline.events:
        return None
    section = report.timeline.totals()
    section["by_connections"] = rows = report.timeline.by_connections()
    folder = run_folder.current(environment)
    if folder is not None:
        from report.websocket_plot import PLOT_FILE, write_plot  # matplotlib only when the run ends

        plot = write_plot(rows, folder.path / PLOT_FILE)
        if plot is not None:
            section["plot"] = plot.name
    return section


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    run_folder.add_section("websocket", websocket_section)
