"""Barge-in: a caller who speaks over the bot's answer, and how fast the bot stops talking.

On a share of turns (--barge-in-rate) the caller does not wait for the whole answer: --barge-in-after-ms after
its first audio it starts its next turn, speaking over the bot. The call (users/audio/audio_call.py, through the
BargeInCalls mixin) notes when the first frame of that speech with voice in it was sent and times the bot until
it stops sending answer audio (users/audio/barge_in_metrics.py defines each figure). Each judged barge-in is a
``BARGE audio:<protocol>`` row: its interruption latency, or the failure ``bot did not stop``; summary.json has
them in ``audio.barge_in`` and ``--slo bargein_p95<300`` judges them.

The caller speaks over an answer with its next turn, so the last turn of a call is never interrupted and
--barge-in-rate needs --turns 2 or more.
"""

from __future__ import annotations

import base64
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent
import numpy as np

from core.errors import InputError
from core.settings import Settings, setting
from users.audio.audio_codec import VOICE_PEAK, mulaw_decode, pcm16_samples
from users.audio.audio_protocols import AUDIO, CLEAR, DONE, Message, WireFormat
from users.audio.barge_in_metrics import ANSWER_OVER, DID_NOT_STOP, STOPPED, BargeIn

if TYPE_CHECKING:
    from users.audio.audio_metrics import CallRecord, TurnRecord

MAX_AFTER_MS = 60_000.0
"""Latest --barge-in-after-ms: an answer a minute long is a recording, not a turn of a conversation."""

DID_NOT_STOP_FAILURE = "bot did not stop"
"""The failure of a BARGE row whose answer went on over the caller's whole interruption."""


@dataclass(frozen=True)
class BargeInSettings(Settings):
    """How often callers speak over the bot's answer, and how far into it."""

    barge_in_rate: float = setting(0.0, "Share of answers the caller speaks over with its next turn (needs --turns 2+)")
    barge_in_after_ms: float = setting(500.0, "How far into an answer (ms after its first audio) the caller barges in")

    def check(self) -> None:
        if not 0 <= self.barge_in_rate <= 1:
            raise InputError(f"--barge-in-rate: must be from 0 to 1, got {self.barge_in_rate:g}")
        if not 0 <= self.barge_in_after_ms <= MAX_AFTER_MS:
            raise InputError(f"--barge-in-after-ms: give 0-{MAX_AFTER_MS:g} ms, got {self.barge_in_after_ms:g}")


def barge_in_settings(options: Any, turns: int) -> BargeInSettings:
    """The run's barge-in settings; InputError when the caller has no next turn to speak over an answer with."""
    settings = BargeInSettings.read(options)
    if settings.barge_in_rate and turns < 2:
        raise InputError("--barge-in-rate: the caller speaks over an answer with its next turn; give --turns 2 or more")
    return settings


def plan_barge_ins(settings: BargeInSettings, turns: int, rng: random.Random) -> list[BargeIn]:
    """The answers one call speaks over, drawn with the user's (seeded) generator; never the last turn's."""
    if not settings.barge_in_rate:
        return []
    after_s = settings.barge_in_after_ms / 1000
    return [BargeIn(turn, after_s) for turn in range(turns - 1) if rng.random() < settings.barge_in_rate]


def has_voice(payload: Message, wire: WireFormat) -> bool:
    """Whether a frame the caller sends is loud enough to be speech (the level the bot's detector hears)."""
    data = payload if isinstance(payload, bytes) else base64.b64decode(payload)
    samples = mulaw_decode(data) if wire.encoding == "mulaw" else pcm16_samples(data)
    return bool(samples.size) and int(np.abs(samples.astype(np.int32)).max()) >= VOICE_PEAK


class BargeInCalls:
    """AudioCall's barge-in (a mixin, as InjectedFaults: it uses the call's record, plan, protocol, turn and events).

    ``_interrupts`` ends the listening to an answer early, ``_spoke`` notes the first frame of the interrupting
    speech with voice, ``_heard`` follows the bot until it stops; each settles a barge-in once the answer has
    been quiet for --response-gap-ms.
    """

    barge_in: BargeIn | None = None
    """The answer being spoken over (class defaults: AudioCall's own __init__ stays as it is)."""
    wake_for: BargeIn | None = None
    """The planned barge-in whose moment a timer will wake the listening caller for."""

    def _interrupts(self, turn: TurnRecord, now: float) -> bool:
        """Whether the caller starts speaking over this turn's answer now (its next turn begins)."""
        if self.barge_in is not None:
            self.barge_in.settle_if_quiet(now, self.plan.response_gap_s)
        planned = self._planned(len(self.record.turns) - 1)
        if planned is None or turn.first_audio_at is None:
            return False
        if turn.done:
            planned.outcome = ANSWER_OVER  # the bot had said all of it: nothing left to stop
            return False
        due = turn.first_audio_at + planned.after_s
        if now < due:
            if self.wake_for is not planned:  # the caller may be waiting on its events without a deadline
                self.wake_for = planned
                gevent.spawn_later(due - now, self.changed.set)
            return False
        self.barge_in = planned
        return True

    def _planned(self, turn_index: int) -> BargeIn | None:
        record: CallRecord = self.record
        for barge_in in record.barge_ins:
            if barge_in.turn < turn_index and barge_in.started_at is None and barge_in.outcome is None:
                barge_in.outcome = ANSWER_OVER  # that answer had played out before the moment to speak over it
            elif barge_in.turn == turn_index and barge_in.outcome is None and barge_in is not self.barge_in:
                return barge_in
        return None

    def _spoke(self, payload: Message, sent_at: float) -> None:
        """A frame of the caller's speech was sent at ``sent_at``: the interruption starts at the first with voice."""
        barge_in = self.barge_in
        if barge_in is None or barge_in.outcome is not None:
            return
        if barge_in.started_at is None:
            if has_voice(payload, self.protocol.wire):
                barge_in.started_at = sent_at
        else:
            barge_in.settle_if_quiet(sent_at, self.plan.response_gap_s)

    def _heard(self, kind: str, audio_bytes: int, name: str, now: float) -> None:
        """The bot said something at ``now``: answer audio, or a signal that it cleared or ended its answer."""
        barge_in = self.barge_in
        if barge_in is None or not barge_in.watching:
            return
        if kind == AUDIO:
            speech_over = self.turn is not None and self.turn.speech_end_at is not None
            duration_ms = self.protocol.wire.duration_ms(audio_bytes)
            barge_in.audio(now, duration_ms, speech_over, self.plan.response_gap_s)
        elif kind in (CLEAR, DONE):
            barge_in.signal(kind, name, now)


class BargeInFailure(Exception):
    """A barge-in the bot did not honour; the message is its failure name."""


def report_barge_ins(environment: Any, name: str, record: CallRecord) -> None:
    """A ``BARGE`` row for each of the call's judged barge-ins: the interruption latency, or a failure."""
    for barge_in in record.barge_ins:
        if barge_in.outcome not in (STOPPED, DID_NOT_STOP) or barge_in.started_at is None:
            continue
        stopped = barge_in.outcome == STOPPED
        environment.events.request.fire(
            request_type="BARGE",
            name=name,
            response_time=barge_in.latency_ms if stopped else barge_in.audio_after_ms,
            response_length=0,
            exception=None if stopped else BargeInFailure(DID_NOT_STOP_FAILURE),
            context={},
            start_time=time.time() - (time.perf_counter() - barge_in.started_at),
        )
