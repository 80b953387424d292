"""Dead air: the silences a caller sits through while waiting for the bot, the way a caller hears them.

A turn's silences are the wait from the end of the caller's speech to the bot's first answer audio (its TTFA;
when no answer came, until the caller gave up or hung up) and every gap inside the answer: the audio so far
has finished playing and nothing new has come. A call's dead air is its longest silence and the count of
silences of at least --dead-air-ms; a caller out of --patience hangs up (the call is ``abandoned``).

Plain records, no network and no Locust; users/audio/call_outcomes.py adds them up over the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from users.audio.audio_metrics import CallRecord

MIN_SILENCE_MS = 100.0
"""The shortest gap inside an answer kept as a silence: a shorter one is a breath, and --dead-air-ms starts here."""

MAX_SILENCES = 100
"""Gaps kept per answer: a bot that stutters forever cannot grow a record without end (the longest are what
matters, and an answer with a hundred gaps has dead air already)."""


@dataclass(slots=True)
class Silences:
    """The gaps inside one answer: when a chunk arrives after the audio before it has finished playing."""

    played_until: float | None = None
    """perf_counter time the answer's audio so far will have finished playing."""
    gaps_ms: list[float] = field(default_factory=list)

    def heard(self, now: float, duration_s: float) -> None:
        """A chunk of ``duration_s`` seconds of answer audio arrived at ``now``."""
        played_until = self.played_until
        if played_until is not None and len(self.gaps_ms) < MAX_SILENCES:
            gap_ms = (now - played_until) * 1000
            if gap_ms >= MIN_SILENCE_MS:
                self.gaps_ms.append(gap_ms)
        self.played_until = (now if played_until is None else max(now, played_until)) + duration_s


@dataclass(frozen=True, slots=True)
class DeadAir:
    """One call's silences: the longest, and how many lasted ``threshold_ms`` or more."""

    longest_ms: float
    over: int
    threshold_ms: float


def call_silences(record: CallRecord, hung_up_at: float) -> Iterable[float]:
    """Every silence of a call, in ms: each turn's wait for the answer, and the gaps inside answers.

    A turn with no answer was silent until the caller gave up (``finished_at``) or, cut short, ``hung_up_at``.
    """
    for turn in record.turns:
        if turn.speech_end_at is None:
            continue  # the caller never finished speaking: it was not waiting for the bot
        if turn.ttfa_ms is not None:
            yield turn.ttfa_ms
        else:
            yield max(0.0, ((turn.finished_at or hung_up_at) - turn.speech_end_at) * 1000)
        yield from turn.silences.gaps_ms


def dead_air(record: CallRecord, threshold_ms: float, hung_up_at: float) -> DeadAir | None:
    """The call's dead air, or None when the caller never waited for the bot."""
    silences = list(call_silences(record, hung_up_at))
    if not silences:
        return None
    return DeadAir(max(silences), sum(silence >= threshold_ms for silence in silences), threshold_ms)
