"""Many idle participants: the heap is frozen once they have all started, so garbage collection stops walking them.

With 10,000 idle group-chat or WebSocket participants in one process the heap holds about 1.5 million objects,
and a full collection walks them all: about 0.8 s on this project's machine, during which every reply, broadcast
and timer waits (docs/PERFORMANCE.md). When spawning completes in a run with such users, ``gc.freeze()`` moves
everything alive into the permanent generation (it costs nothing: no collection first); later garbage is
collected as before. What was alive then and dies later in a reference cycle is not reclaimed: a stopped user's
few KB, bounded by the users spawned.
"""

from __future__ import annotations

import gc
from typing import Any

from locust import Events

from users.plenary.plenary_user import PlenaryUser
from users.ws.ws_chat import WebSocketChatUser

FREEZE_AFTER_SPAWNING = True
"""Freeze the heap when spawning completes in a run with the users below (tests may turn it off)."""

IDLE_HEAVY_USERS = (PlenaryUser, WebSocketChatUser)
"""Users that come by the thousand and mostly wait."""


def _on_spawned(environment: Any, **_kwargs: Any) -> None:
    if FREEZE_AFTER_SPAWNING and any(issubclass(user, IDLE_HEAVY_USERS) for user in environment.user_classes or ()):
        gc.freeze()


def _on_init(environment: Any, **_kwargs: Any) -> None:
    environment.events.spawning_complete.add_listener(lambda **kwargs: _on_spawned(environment, **kwargs))


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
