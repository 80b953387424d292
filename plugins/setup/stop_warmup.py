"""The end of a run does not stall answers still in flight: Locust's stop-time stack walk is paid at the start.

When the run time is up, Locust's ``Runner.stop()`` calls ``inspect.stack()`` for one debug line while the users
are still finishing their exchanges (``--stop-timeout``). The first such call maps every loaded module to its file
(an ``os.path.realpath`` each) and reads the source of every frame on the stack: with Chatswarm's imports that
blocks the event loop for 20-30 ms, and every streamed answer waiting for its first token then reads that much
slow (bench/stream_bench.py: the worst TTFT errors of a run all started in its last 50 ms). The same walk made
once when the test starts, before any user runs, fills those caches, so the one at the end costs next to nothing.
"""

from __future__ import annotations

import inspect
import linecache
from typing import Any

from locust import Events, main, runners


def _walk_the_stack_once(**_kwargs: Any) -> None:
    inspect.stack()
    for module in (main, runners):  # the frames of the stop itself: run-time greenlet and runner
        linecache.getlines(module.__file__)


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.test_start.add_listener(_walk_the_stack_once)
