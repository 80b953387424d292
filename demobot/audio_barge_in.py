"""How demobot reacts when a caller speaks over its reply (barge-in): it stops the reply ``--audio-barge-in-ms``
after the first frame with voice arrived over it, as a real voice agent's speech detector needs a moment to be
sure, and logs the true reaction to the timing log (--timing-log) so tests can check what callers measure.

With ``--audio-barge-in-ms 0`` (the default) the reply stops at that first frame, as it always did. The stop is
tied to the reply the caller spoke over: if that reply ended, or another began, meanwhile, nothing is stopped.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import TYPE_CHECKING

from demobot.timing_log import BargeInTiming, TimingLog

if TYPE_CHECKING:
    from demobot.routes_audio import VoiceCall

_barge_in_numbers = itertools.count(1)


class BargeIn:
    """One call's reaction to being spoken over: the stop under way, if any."""

    def __init__(self, call: VoiceCall, timing_log: TimingLog | None) -> None:
        self.call = call
        self.timing_log = timing_log
        self.spoken_over: asyncio.Task[None] | None = None
        """The reply the caller is speaking over (its stop is pending)."""
        self.pending: asyncio.Task[None] | None = None

    async def heard(self, now: float) -> None:
        """A frame with the caller's voice arrived at ``now`` while demobot is replying."""
        reply = self.call.reply_task
        if reply is None or (self.pending is not None and self.spoken_over is reply):
            return  # nothing to stop, or its stop is already counting down
        delay_s = self.call.config.barge_in_ms / 1000
        if not delay_s:
            await self._stop(reply, now)
            return
        self.spoken_over = reply
        self.pending = asyncio.create_task(self._stop_at(reply, now, now + delay_s))

    async def _stop_at(self, reply: asyncio.Task[None], heard_at: float, due: float) -> None:
        while (wait := due - time.perf_counter()) > 0:  # the loop's timers may fire a little early
            await asyncio.sleep(wait)
        self.pending = None
        await self._stop(reply, heard_at)

    async def _stop(self, reply: asyncio.Task[None], heard_at: float) -> None:
        call = self.call
        if call.ended or call.reply_task is not reply:
            return  # the reply ended by itself, or the call did
        await call.interrupt()
        if self.timing_log is not None and call.preset is not None:
            now, wall = time.perf_counter(), time.time()
            self.timing_log.record(
                BargeInTiming(
                    id=f"barge-{next(_barge_in_numbers)}",
                    protocol=call.preset.name,
                    heard=wall - (now - heard_at),
                    stopped=wall,
                    reaction_ms=round((now - heard_at) * 1000, 3),
                )
            )
