"""A locustfile to add beside locustfile.py (``-f locustfile.py,tests/users/llm/user_wakeups.py``): it counts how
often the users' greenlets are switched to (woken), and writes the count to the file WAKEUPS_LOG names at the end."""

from __future__ import annotations

import json
import os
from typing import Any

import greenlet
from locust import User, events

WAKEUPS = "locustfile.py,tests/users/llm/user_wakeups.py"
"""The -f of a run whose users' wake-ups are counted."""
LOG_VARIABLE = "WAKEUPS_LOG"

_counted = {"wakeups": 0}


def _trace(event: str, args: tuple[Any, Any]) -> None:
    if event in ("switch", "throw"):
        target_args = getattr(args[1], "args", None)
        if target_args and isinstance(target_args[0], User):  # a user's greenlet: Locust spawns it with the user
            _counted["wakeups"] += 1


@events.test_start.add_listener
def _count(**_: Any) -> None:
    greenlet.settrace(_trace)


@events.test_stop.add_listener
def _write(**_: Any) -> None:
    greenlet.settrace(None)
    with open(os.environ[LOG_VARIABLE], "w") as file:
        json.dump(_counted, file)
