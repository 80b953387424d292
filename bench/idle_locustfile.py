"""The locustfile of bench/idle_bench.py: Chatswarm's own users plus the bare baseline, and two probes.

- ``IdleWebSocketUser``: the least a Locust user can do to sit in a room: open one WebSocket (websocket-client),
  join, then block in ``recv()`` in its own greenlet. What Chatswarm's idle participants are compared with.
- With ``BENCH_OUT=file.json``: Locust's resident memory ``BENCH_RSS_AT_S`` seconds after the test starts, the
  number of greenlets, and (``BENCH_HOLDS=1``) how long each kind of greenlet held the event loop at a time,
  from a greenlet switch tracer: the time from a switch into a greenlet to the next switch out of it is time no
  other greenlet (timer, receive loop, user) could run. Written when Locust quits. Not part of the test suite.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import time
from typing import Any

import gevent
import greenlet
import psutil
import websocket
from locust import User, constant, events, task

from locustfile import *  # noqa: F403 - the real users and plugins, registered as in a normal run

ROOM_SIZE = 50
HUB = "hub"
_numbers = itertools.count()


class IdleWebSocketUser(User):
    """Baseline: one WebSocket, one join, then ``recv()`` forever (no metrics, no sign-in, no bookkeeping)."""

    wait_time = constant(0)

    def on_start(self) -> None:
        number = next(_numbers)
        base = self.host.replace("http", "ws", 1).rstrip("/")
        self.ws = websocket.create_connection(f"{base}/ws/plenary?user=baseline{number}", timeout=60)
        self.ws.settimeout(None)
        self.ws.send(json.dumps({"type": "join", "room": f"baseline_{number // ROOM_SIZE}"}))

    @task
    def listen(self) -> None:
        self.ws.recv()


class LoopHolds:
    """Per kind of greenlet: how often it ran, its longest run, and its runs over 1 ms (a switch tracer)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.running = "main"
        """The kind of the greenlet switched into last, named then (a dying greenlet has forgotten its function)."""
        self.kinds: dict[str, list[float]] = {}

    def __call__(self, event: str, args: Any) -> None:
        if event not in ("switch", "throw"):
            return
        now = time.perf_counter()
        held, self.last = now - self.last, now
        kind, self.running = self.running, _kind(args[1])
        if kind == HUB:
            return  # the hub's turns include its waits for I/O: not a hold
        figures = self.kinds.setdefault(kind, [0, 0.0, 0, 0.0])
        figures[0] += 1
        figures[1] = max(figures[1], held)
        if held > 0.001:
            figures[2] += 1
            figures[3] += held

    def report(self) -> dict[str, Any]:
        rows = {
            kind: {"runs": n, "max_ms": round(top * 1000, 2), "over_1ms": over, "over_1ms_total_ms": round(t * 1000)}
            for kind, (n, top, over, t) in self.kinds.items()
        }
        return dict(sorted(rows.items(), key=lambda item: -item[1]["max_ms"]))


def _kind(glet: Any) -> str:
    """A greenlet's kind: the function it runs (the hub's own turns: loop callbacks and watchers)."""
    if isinstance(glet, gevent.hub.Hub):
        return HUB
    run = getattr(glet, "_run", None) or getattr(glet, "run", None)
    run = getattr(run, "func", run)  # functools.partial
    return getattr(run, "__qualname__", type(run).__name__)


@events.test_start.add_listener
def _start_probes(environment: Any, **_kwargs: Any) -> None:
    out = os.environ.get("BENCH_OUT")
    if not out:
        return
    holds = LoopHolds() if os.environ.get("BENCH_HOLDS") else None
    if holds is not None:
        greenlet.settrace(holds)
    found: dict[str, Any] = {}

    def sample_rss() -> None:
        gevent.sleep(float(os.environ.get("BENCH_RSS_AT_S", "30")))
        if holds is not None:
            greenlet.settrace(None)  # the collection below is the benchmark's, not the run's
            found["holds"] = holds.report()
        gc.collect()
        found["rss"] = psutil.Process().memory_info().rss
        found["users"] = environment.runner.user_count
        gc.unfreeze()  # frozen objects (plugins/metrics/heap_freeze.py) are not listed; frozen again at once
        found["greenlets"] = sum(1 for item in gc.get_objects() if isinstance(item, greenlet.greenlet))
        gc.freeze()

    def write(**_kwargs: Any) -> None:
        with open(out, "w", encoding="utf-8") as file:
            json.dump(found, file, indent=1)

    def steady(**_kwargs: Any) -> None:
        if holds is not None:
            holds.kinds.clear()  # from here on: the run itself, not the spawning

    gevent.spawn(sample_rss)
    environment.events.spawning_complete.add_listener(steady)
    environment.events.quitting.add_listener(write)
