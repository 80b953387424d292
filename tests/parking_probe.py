"""Bytes traced per parked greenlet, parked with ``park`` and with ``gevent.sleep``, in a fresh process: what a
greenlet keeps while switched out (its saved C stack among it) depends on how deep the stack was where the waiting
started, which in a pytest worker depends on what ran there before. Run by tests/users/common/test_parking.py; prints
one JSON line."""

import json
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gevent

from users.common.parking import park

PARKED = 300


def traced_per_greenlet(wait: Callable[[float], None]) -> float:
    """Bytes traced per greenlet while PARKED of them wait with ``wait``."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        waiting = [gevent.spawn(wait, 3600) for _ in range(PARKED)]
        gevent.sleep(0.05)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    gevent.killall(waiting, block=True, timeout=5)
    return grown / PARKED


if __name__ == "__main__":
    gevent.config.track_greenlet_tree = False  # as locustfile.py sets it
    traced_per_greenlet(gevent.sleep), traced_per_greenlet(park)  # warm-up: the first spawns grow gevent's tables
    print(json.dumps({"sleeping": traced_per_greenlet(gevent.sleep), "parked": traced_per_greenlet(park)}))
