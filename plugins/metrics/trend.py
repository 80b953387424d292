"""The run in slices: exchanges, exact latency and users per SLICE_S seconds, merged over workers.

Every process files each exchange (timing rows such as TTFT, FANOUT and TTFA left out) by the wall-clock
slice it ended in: a count, and the response time of successful ones in an exact histogram. The master (or a
local runner) samples the users every second. summary.json's ``trend`` section holds the slices, and the
drift and saturation readings of report/trend.py, which the answer quotes.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from locust import Events
from locust.runners import WorkerRunner

from core.histogram import Histogram
from core.metric_book import EXTRA_ROWS
from plugins.metrics.merged import MergedOverWorkers
from plugins.output.run_folder import add_section
from report import trend
from users.common import records

SLICE_S = 5
"""Seconds per slice: short enough for a 30-second run to show a trend, long enough to hold samples."""

MESSAGE_KEY = "chatswarm_trend"


class Trend(MergedOverWorkers):
    """This Environment's slices (all processes' on the master or a local runner)."""

    message_key = MESSAGE_KEY

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.latency: dict[int, Histogram] = {}
        self.exchanges: dict[int, int] = {}
        self.users: dict[int, int] = {}
        self.sampler: gevent.Greenlet | None = None

    def listen(self) -> None:
        events = self.environment.events
        events.request.add_listener(self.on_request)
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        self.listen_for_reports()

    def on_request(self, request_type: str, response_time: float | None, exception: Any = None, **_kwargs: Any) -> None:
        if request_type in EXTRA_ROWS:
            return
        index = int(time.time() // SLICE_S)
        self.exchanges[index] = self.exchanges.get(index, 0) + 1
        if exception is None and response_time is not None:
            histogram = self.latency.get(index)
            if histogram is None:
                histogram = self.latency[index] = Histogram()
            histogram.add(response_time)

    def on_test_start(self, **_kwargs: Any) -> None:
        self.latency, self.exchanges, self.users = {}, {}, {}
        if not isinstance(self.environment.runner, WorkerRunner) and self.sampler is None:
            self.sampler = gevent.spawn(self._sample_users)

    def on_test_stop(self, **_kwargs: Any) -> None:
        if self.sampler is not None:
            self.sampler.kill(block=False)
            self.sampler = None

    def _sample_users(self) -> None:
        while True:
            index = int(time.time() // SLICE_S)
            self.users[index] = max(self.users.get(index, 0), self.environment.runner.user_count)
            gevent.sleep(1.0)

    def take_message(self) -> dict[str, Any] | None:
        if not self.exchanges:
            return None
        message = {
            "exchanges": list(self.exchanges.items()),
            "latency": [(index, list(h.counts.items())) for index, h in self.latency.items()],
        }
        self.latency, self.exchanges = {}, {}
        return message

    def merge_message(self, message: dict[str, Any], client_id: str) -> None:
        for index, count in message["exchanges"]:
            self.exchanges[index] = self.exchanges.get(index, 0) + count
        for index, counts in message["latency"]:
            self.latency.setdefault(index, Histogram()).merge(counts)

    def slices(self) -> list[dict[str, Any]]:
        """Every slice from the first exchange to the last, oldest first."""
        if not self.exchanges:
            return []
        first, last = min(self.exchanges), max(self.exchanges)
        rows = []
        for index in range(first, last + 1):
            latency = self.latency.get(index)
            p50, p95 = (latency.percentile(50), latency.percentile(95)) if latency else (None, None)
            rows.append(
                {
                    "t_s": (index - first) * SLICE_S,
                    "users": self.users.get(index),
                    "rps": round(self.exchanges.get(index, 0) / SLICE_S, 2),
                    "p50_ms": p50,
                    "p95_ms": p95,
                }
            )
        return rows


def trend_section(environment: Any, _duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``trend`` section: the slices, and whether latency drifted or throughput saturated."""
    state = records.existing(environment, Trend)
    slices = state.slices() if state else []
    if not slices:
        return None
    return {
        "slice_s": SLICE_S,
        "drift": trend.drift(slices),
        "saturation": trend.saturation(slices),
        "slices": slices,
    }


def _on_init(environment: Any, **_kwargs: Any) -> None:
    records.state(environment, Trend, lambda: Trend(environment)).listen()


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    add_section("trend", trend_section)
