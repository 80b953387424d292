"""Garbage collection does not stall the run: the heap is frozen at the start and again once the users have started.

A full collection walks every object the process holds. At test start that is Locust's and Chatswarm's own heap
(~170,000 objects): 40-70 ms on this project's machine, during which no token, frame or reply is read; a streamed
answer whose first token waited behind it past the next token is timed as late as the second (docs/PERFORMANCE.md:
one 47 ms collection in 30 s at 100 streams). With 10,000 idle group-chat or WebSocket participants it is about
1.5 million objects and 0.8 s. ``gc.freeze()`` moves everything alive into the permanent generation, which
collections skip: once at test start (after one collection, before any user runs) and again each time spawning
completes (no collection: it costs nothing). Later garbage is collected as before. What was alive then and dies
later in a reference cycle is not reclaimed: a stopped user's few KB, bounded by the users spawned. Locust does the
same before it forks with --processes.
"""

from __future__ import annotations

import gc
from typing import Any

from locust import Events

FREEZE_HEAP = True
"""Freeze the heap at test start and when spawning completes (tests may turn it off)."""


def _on_test_start(**_kwargs: Any) -> None:
    if FREEZE_HEAP:
        gc.collect()
        gc.freeze()


def _on_spawned(**_kwargs: Any) -> None:
    if FREEZE_HEAP:
        gc.freeze()


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.test_start.add_listener(_on_test_start)
    events.spawning_complete.add_listener(_on_spawned)
