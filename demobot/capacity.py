"""demobot's capacity model: a fixed number of generation slots, a bounded FIFO queue, and rejection beyond it.

This is what gives ramps, breakpoint searches and the PID shape a real knee to find: latency rises
once every slot is busy (requests queue), and requests are refused with 429 once the queue is full.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from types import TracebackType


class Overloaded(Exception):
    """Raised at admission when every slot is busy and the queue is full (the route answers 429)."""


class SlotTicket:
    """One admitted request's claim on a slot: `await acquire()` waits for it (FIFO), `release()` gives it back.

    Use as `async with ticket:`; releasing is idempotent and also withdraws a ticket still waiting in the queue.
    """

    __slots__ = ("_model", "_waiter", "granted", "released")

    def __init__(self, model: CapacityModel, waiter: asyncio.Future[None] | None) -> None:
        self._model = model
        self._waiter = waiter
        self.granted = waiter is None
        self.released = False

    async def acquire(self) -> None:
        """Wait until this request holds a slot."""
        if self.granted:
            return
        assert self._waiter is not None
        try:
            await self._waiter
        except asyncio.CancelledError:
            # The slot may have been handed over in the same loop iteration as the cancellation.
            if self._waiter.done() and not self._waiter.cancelled():
                self.granted = True
            self.release()
            raise
        self.granted = True

    def release(self) -> None:
        """Give the slot back (or leave the queue); safe to call more than once."""
        if self.released:
            return
        self.released = True
        handed_over = self._waiter is not None and self._waiter.done() and not self._waiter.cancelled()
        if self.granted or handed_over:
            self._model._release_slot()
        else:
            self._model._leave_queue(self._waiter)

    async def __aenter__(self) -> SlotTicket:
        await self.acquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class CapacityModel:
    """Admits generation requests into `slots` concurrent slots with a FIFO queue of at most `queue_limit`."""

    def __init__(self, slots: int, queue_limit: int) -> None:
        if slots < 1 or queue_limit < 0:
            raise ValueError("slots must be >= 1 and queue_limit >= 0")
        self.slots = slots
        self.queue_limit = queue_limit
        self.active = 0
        self.served = 0
        self.rejected = 0
        self.max_active = 0
        self.max_queued = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        """Requests admitted but still waiting for a slot."""
        return len(self._waiters)

    def admit(self) -> SlotTicket:
        """Admit a request without waiting: a ticket holding a slot, or one queued for the next free slot.

        Typical use: `async with model.admit():` (admission raises before the `with` body, waiting happens in it).

        Raises `Overloaded` at once when all slots are busy and `queue_limit` requests already wait.
        """
        if self.active < self.slots and not self._waiters:
            self._occupy()
            return SlotTicket(self, None)
        if len(self._waiters) >= self.queue_limit:
            self.rejected += 1
            raise Overloaded
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.max_queued = max(self.max_queued, len(self._waiters))
        return SlotTicket(self, waiter)

    def counters(self) -> dict[str, int]:
        """The model's counters for /stats."""
        return {
            "slots": self.slots,
            "queue_limit": self.queue_limit,
            "active": self.active,
            "queued": self.queued,
            "served": self.served,
            "rejected": self.rejected,
            "max_active": self.max_active,
            "max_queued": self.max_queued,
        }

    def _occupy(self) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)

    def _release_slot(self) -> None:
        self.active -= 1
        self.served += 1
        # Hand the slot straight to the oldest waiter so a newcomer cannot overtake the queue.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._occupy()
                waiter.set_result(None)
                return

    def _leave_queue(self, waiter: asyncio.Future[None] | None) -> None:
        if waiter is None:
            return
        waiter.cancel()
        with contextlib.suppress(ValueError):  # already popped by a hand-over
            self._waiters.remove(waiter)
