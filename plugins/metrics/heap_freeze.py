"""Garbage collection does not stall the run: the heap is frozen at the start, and once many idle users have started.

A full collection walks every object the process holds. At test start that is Locust's and Chatswarm's own heap
(~170,000 objects): 30-70 ms on this project's machine, during which no token, frame or reply is read; a streamed
answer whose first token waited behind it past the next token is timed as late as the second (docs/PERFORMANCE.md:
one 47 ms collection in 30 s at 100 streams). ``gc.freeze()`` moves everything alive into the permanent
generation, which collections skip. At each test start everything frozen before is let go, collected once and
frozen again, before any user runs.

With 10,000 idle group-chat or WebSocket participants the heap holds about 1.5 million objects: 0.8 s a
collection. In runs with such users the heap is frozen again when spawning completes (it costs nothing: no
collection first). What was alive then and dies later in a reference cycle is not reclaimed until the next test
start: a stopped user's few KB. Locust itself freezes the heap before it forks with --processes.

Young objects are collected every GEN0_THRESHOLD allocations instead of Python's 700. A streamed answer's objects
live as long as the answer (hundreds of ms), so at 700 each was walked by many collections before it died: at 900
streams 1,169 collections in 25 s, with 106 of the middle generation at 4.4 ms each, 1.1 s of the 23.7 s of CPU in
all. At 5,000 most die before a collection walks them: 54 collections of 1.4 ms and 4 of 8.5 ms, 0.14 s
(docs/PERFORMANCE.md).
"""

from __future__ import annotations

import gc
from typing import Any

from locust import Events

from users.plenary.plenary_user import PlenaryUser
from users.ws.ws_chat import WebSocketChatUser

FREEZE_HEAP = True
"""Freeze the heap at test start, and when spawning completes in runs with idle-heavy users (tests may turn it off)."""

IDLE_HEAVY_USERS = (PlenaryUser, WebSocketChatUser)
"""Users that come by the thousand and mostly wait."""

GEN0_THRESHOLD = 5000
"""Allocations (less deallocations) between two collections of the young generation (Python's default: 700)."""


def on_test_start(**_kwargs: Any) -> None:
    """Let go of what an earlier test froze, collect once, and freeze what is alive now; collect young objects less
    often."""
    if FREEZE_HEAP:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        _young, middle, old = gc.get_threshold()
        gc.set_threshold(GEN0_THRESHOLD, middle, old)


def on_spawned(environment: Any) -> None:
    """Freeze the users just started, when they are the idle-heavy kind."""
    if FREEZE_HEAP and any(issubclass(user, IDLE_HEAVY_USERS) for user in environment.user_classes or ()):
        gc.freeze()


def _on_init(environment: Any, **_kwargs: Any) -> None:
    environment.events.spawning_complete.add_listener(lambda **_: on_spawned(environment))


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.test_start.add_listener(on_test_start)
    events.init.add_listener(_on_init)
