"""The run measures its own trust: how late the event loop wakes up, in every Locust process.

A probe greenlet asks to sleep PROBE_INTERVAL_S again and again and records how much later than asked it
woke up. Every user's timing waits for the same loop, so this lag is how far a latency figure may read
high: when the loop is busy (too many users per process, a flood of frames, garbage collection) the
probe sees it even while CPU is under Locust's 90% warning. Workers send their lag to the master with
each stats report; ``summary.json`` → ``generator`` → ``loop_lag_ms`` holds p50, p99 and max over all
processes.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from locust import Events
from locust.runners import MasterRunner

from core.histogram import Histogram
from plugins.metrics.merged import MergedOverWorkers
from users.common import records

PROBE_INTERVAL_S = 0.005
"""How often the probe asks to wake up (a few ms: fine enough to see a stall, cheap enough to ignore)."""

MESSAGE_KEY = "chatswarm_loop_lag"


class LoopLag(MergedOverWorkers):
    """This Environment's probe and the lag it measured (all processes' on the master or a local runner)."""

    message_key = MESSAGE_KEY

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.lag = Histogram()
        self.probe: gevent.Greenlet | None = None

    def listen(self) -> None:
        events = self.environment.events
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        self.listen_for_reports()
        events.reset_stats.add_listener(self.reset)

    def on_test_start(self, **_kwargs: Any) -> None:
        self.reset()
        if self.probe is None and not isinstance(self.environment.runner, MasterRunner):  # a master runs no users
            self.probe = gevent.spawn(self._probe_forever)

    def on_test_stop(self, **_kwargs: Any) -> None:
        if self.probe is not None:
            self.probe.kill(block=False)
            self.probe = None

    def reset(self, **_kwargs: Any) -> None:
        self.lag = Histogram()

    def _probe_forever(self) -> None:
        clock, sleep, interval = time.perf_counter, gevent.sleep, PROBE_INTERVAL_S
        while True:
            asked = clock()
            sleep(interval)
            self.lag.add(max(0.0, (clock() - asked - interval) * 1000))

    def take_message(self) -> list[tuple[int, int]] | None:
        taken, self.lag = self.lag, Histogram()
        return list(taken.counts.items()) if taken.total else None

    def merge_message(self, message: list[tuple[int, int]], client_id: str) -> None:
        self.lag.merge(message)

    def figures(self) -> dict[str, float | None]:
        """Loop lag p50, p99 and max in ms (None before any sample)."""
        return {
            "p50": _round(self.lag.percentile(50)),
            "p99": _round(self.lag.percentile(99)),
            "max": _round(self.lag.percentile(100)),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def loop_lag(environment: Any) -> LoopLag | None:
    """This Environment's probe, when one runs."""
    return records.existing(environment, LoopLag)


def _on_init(environment: Any, **_kwargs: Any) -> None:
    records.state(environment, LoopLag, lambda: LoopLag(environment)).listen()


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
