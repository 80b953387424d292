"""Barge-in measured: one plain record per answer the caller speaks over, and the mergeable totals.

Definitions (times from ``time.perf_counter()`` on the caller's side):

- interruption latency: the first frame of the caller's interrupting speech (the first loud enough to be speech)
  is sent → the bot stops sending answer audio: a stop signal (Twilio ``clear``, Realtime
  ``output_audio_buffer.cleared`` or a ``response.done`` that is not ``completed``, a raw ``done`` that is not
  ``completed``), else the last answer frame before the answer went quiet for --response-gap-ms.
- audio after interrupting: milliseconds of answer audio that still arrived in that time.
- bot did not stop: the answer ran to its end anyway (``done``/``response.done`` ``completed``), or its audio was
  still coming, without a pause, when the caller had finished its interrupting speech.
- answer over first: the whole answer had arrived before the caller spoke over it; nothing to stop, not counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from core.histogram import Histogram

STOPPED, DID_NOT_STOP, ANSWER_OVER = "stopped", "did not stop", "answer over first"
"""Outcomes of a barge-in."""

COMPLETED = "completed"
"""The status of an answer that ran to its end (raw ``done``, Realtime ``response.done``)."""


@dataclass(slots=True)
class BargeIn:
    """One answer the caller speaks over: planned by the user, then timed by the call until the bot stops."""

    turn: int
    """Index of the turn whose answer the caller interrupts (by starting the next turn early)."""
    after_s: float
    """How far into the answer (from its first audio) the caller starts speaking."""
    started_at: float | None = None
    """When the first frame of the interrupting speech with voice in it was sent."""
    stopped_at: float | None = None
    last_audio_at: float | None = None
    """The last answer audio that arrived after ``started_at``."""
    audio_after_ms: float = 0.0
    outcome: str | None = None
    """STOPPED, DID_NOT_STOP or ANSWER_OVER once known."""
    how: str = ""
    """What said the bot stopped: ``clear``, ``cancelled`` (a done's status), ``last frame``."""

    @property
    def latency_ms(self) -> float | None:
        if self.outcome != STOPPED or self.started_at is None or self.stopped_at is None:
            return None
        return (self.stopped_at - self.started_at) * 1000

    @property
    def watching(self) -> bool:
        """The caller has spoken over the answer and does not know yet whether the bot stopped."""
        return self.started_at is not None and self.outcome is None

    def audio(self, now: float, duration_ms: float, speech_over: bool, quiet_s: float) -> None:
        """Answer audio arrived at ``now``; ``speech_over`` once the caller has said its whole interruption."""
        if not self.watching or self.settle_if_quiet(now, quiet_s):
            return  # settled already, or the answer had stopped: this audio is the next answer's
        if speech_over:
            self.outcome, self.stopped_at = DID_NOT_STOP, None
            return
        self.audio_after_ms += duration_ms
        self.last_audio_at = now

    def signal(self, kind: str, status: str, now: float) -> None:
        """The bot cleared its audio (``kind`` "clear") or ended its answer (``kind`` "done", with ``status``)."""
        if not self.watching:
            return
        if kind == "done" and status == COMPLETED:
            self.outcome = DID_NOT_STOP  # it played its answer to the end over the caller
        else:
            self.stop(now, "clear" if kind == "clear" else status or "done")

    def settle_if_quiet(self, now: float, quiet_s: float) -> bool:
        """Settle as stopped at the last answer frame once no answer audio has come for ``quiet_s``."""
        if not self.watching or now - (self.last_audio_at or self.started_at or now) < quiet_s:
            return False
        if self.last_audio_at is None:
            self.outcome = ANSWER_OVER
        else:
            self.stop(self.last_audio_at, "last frame")
        return True

    def stop(self, at: float, how: str) -> None:
        self.outcome, self.stopped_at, self.how = STOPPED, at, how


class BargeInStats:
    """Barge-ins of one process (or merged from several): interruption latency, audio after it, outcomes."""

    def __init__(self) -> None:
        self.latency = Histogram()
        self.audio_after = Histogram()
        self.outcomes: Counter[str] = Counter()

    def add(self, barge_ins: list[BargeIn]) -> None:
        """Count a call's barge-ins whose outcome is known."""
        for barge_in in barge_ins:
            if barge_in.outcome is None:
                continue
            self.outcomes[barge_in.outcome] += 1
            latency = barge_in.latency_ms
            if latency is not None:
                self.latency.add(latency)
                self.audio_after.add(barge_in.audio_after_ms)

    def to_message(self) -> dict[str, Any]:
        return {
            "latency": list(self.latency.counts.items()),
            "audio_after": list(self.audio_after.counts.items()),
            "outcomes": dict(self.outcomes),
        }

    def merge_message(self, message: dict[str, Any]) -> None:
        self.latency.merge(message.get("latency", ()))
        self.audio_after.merge(message.get("audio_after", ()))
        self.outcomes.update(message.get("outcomes", {}))

    def summary(self) -> dict[str, Any] | None:
        """summary.json's ``audio.barge_in``, when any barge-in was judged."""
        if not self.outcomes:
            return None
        return {
            "count": self.outcomes[STOPPED] + self.outcomes[DID_NOT_STOP],
            "latency_ms": self.latency.summary(),
            "audio_after_ms": self.audio_after.summary(),
            "bot_did_not_stop": self.outcomes[DID_NOT_STOP],
            "answer_over_first": self.outcomes[ANSWER_OVER],
        }
