"""A locustfile to add beside locustfile.py (``-f locustfile.py,tests/users/llm/busy_generator.py``): it keeps the
load generator's event loop busy, as a loaded generator's is, so tests can check what a busy loop does to the times.

One greenlet holds the loop for BUSY_MS out of every BUSY_MS + FREE_MS without yielding (as a user parsing a large
answer, a garbage collection or a spawning batch would); it ends with the test, and after MAX_BUSY_S in any case.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from locust import events
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING

BUSY_MS, FREE_MS = 12.0, 8.0
MAX_BUSY_S = 60.0


def _hold_the_loop(environment: Any) -> None:
    ends = time.monotonic() + MAX_BUSY_S
    while time.monotonic() < ends and environment.runner.state not in (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP):
        busy_until = time.perf_counter() + BUSY_MS / 1000
        while time.perf_counter() < busy_until:
            pass
        gevent.sleep(FREE_MS / 1000)


@events.test_start.add_listener
def _busy_from_the_start(environment: Any, **_: Any) -> None:
    gevent.spawn(_hold_the_loop, environment)
