"""The faults an AudioCall injects on purpose (--fault-rate: drop the line, send a malformed frame, go silent)
and the bot's first reaction to them; apart from users/audio/audio_call.py so that the call reads as a call."""

from __future__ import annotations

import time

from users.ws.ws_frames import client_frame


class InjectedFaults:
    """AudioCall's fault injection (a mixin: it uses the call's record, plan, socket and events)."""

    def _inject_fault(self) -> bool:
        """Misbehave as ``self.fault`` says; True when that ends the call."""
        record = self.record
        self.fault_at = time.perf_counter()
        if self.fault == "drop":
            record.fault_reaction = "dropped mid-utterance"
            self.hanging_up = True
            self.ws.shutdown()  # no close frame: the TCP connection just goes away
            return True
        if self.fault == "malformed":
            self._write(client_frame(self.protocol.malformed()))
            return False  # keep talking; the receiver notes what the bot does about it
        # silence: say nothing at all, and see whether the bot hangs up
        deadline = self.fault_at + self.plan.fault_silence_s
        while not self.closed and (remaining := deadline - time.perf_counter()) > 0:
            self.changed.wait(remaining)
            self.changed.clear()
        if not self.closed:
            record.fault_reaction = "kept the line open"
        return True

    def _reacted(self, reaction: str, now: float) -> None:
        """Note the bot's first reaction to an injected fault, and how long it took."""
        record = self.record
        if record.fault_reaction is None and self.fault_at is not None:
            record.fault_reaction = reaction
            record.fault_reaction_ms = (now - self.fault_at) * 1000
