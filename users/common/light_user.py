"""What a Locust user holds while it waits, made smaller: idle participants are many (10,000 per process).

Locust gives every user a task queue (a ``collections.deque``: 624 bytes, even empty) that holds at most the next
task of a user with a single task; ``SmallTaskQueue`` holds it in a list (56 bytes).
"""

from __future__ import annotations

from collections import deque
from typing import Any


class SmallTaskQueue(list):
    """The deque operations Locust's TaskSet uses on its ``_task_queue``, on a list (a few entries at most)."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)


def lighten_task_queue(user: Any) -> None:
    """Swap the user's empty task deque for a SmallTaskQueue (call from ``on_start``; a no-op if Locust changes)."""
    tasks = getattr(user, "_taskset_instance", None)
    if isinstance(getattr(tasks, "_task_queue", None), deque) and not tasks._task_queue:
        tasks._task_queue = SmallTaskQueue()
