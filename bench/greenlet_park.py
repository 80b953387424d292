"""Benchmark: resident memory of a parked greenlet, by how it is parked (the floor under every idle Locust user).

    taskset -c 0 .venv/bin/python bench/greenlet_park.py

For each way of parking, a fresh process spawns 200 greenlets (warm-up), reads its resident memory, spawns 10,000
more parked the same way, and prints the growth per greenlet. Prints Markdown for docs/PERFORMANCE.md. Not part of
the test suite.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Callable

import gevent
import gevent.event
import greenlet
import psutil

PARKED = 10_000
WARM_UP = 200
PARK_S = 3600


class _Block:
    def __enter__(self) -> _Block:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def _sleep() -> None:
    gevent.sleep(PARK_S)


def _deeper(levels: int = 5) -> None:
    if levels:
        _deeper(levels - 1)
    else:
        gevent.sleep(PARK_S)


def _in_block() -> None:
    with _Block():
        gevent.sleep(PARK_S)


_never = gevent.event.Event()


def _event() -> None:
    _never.wait()


def _timer_switch() -> None:
    hub = gevent.get_hub()
    timer = hub.loop.timer(PARK_S)
    timer.start(greenlet.getcurrent().switch)
    try:
        hub.switch()
    finally:
        timer.close()


WAYS: dict[str, tuple[str, Callable[[], None]]] = {
    "sleep": ("`gevent.sleep(3600)` (what Locust's wait does)", _sleep),
    "deeper": ("the same, five Python calls deeper", _deeper),
    "block": ("the same, inside a `with` block", _in_block),
    "event": ("`Event.wait()`", _event),
    "timer": ("a loop timer that switches back, `hub.switch()`", _timer_switch),
}


def measure(way: str) -> float:
    """KB of resident memory per greenlet parked this way (in this process)."""
    gevent.config.track_greenlet_tree = False  # as locustfile.py sets it
    park = WAYS[way][1]
    kept = [gevent.spawn(park) for _ in range(WARM_UP)]
    gevent.sleep(0.1)
    gc.collect()
    before = psutil.Process().memory_info().rss
    kept += [gevent.spawn(park) for _ in range(PARKED)]
    gevent.sleep(0.5)
    gc.collect()
    return (psutil.Process().memory_info().rss - before) / PARKED / 1024


def main() -> None:
    if len(sys.argv) == 2:
        print(f"{measure(sys.argv[1]):.2f}")
        return
    print("| parked in | KB per greenlet |\n|---|---|")
    for way, (name, _park) in WAYS.items():
        found = subprocess.run([sys.executable, __file__, way], capture_output=True, text=True, check=True)
        print(f"| {name} | {found.stdout.strip()} |", flush=True)


if __name__ == "__main__":
    main()
