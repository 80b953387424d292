"""What calls were like for the callers, over a run: set up or not, abandoned, dead air, TTFA turn by turn.

- call setup: a call is set up when it connected and the bot answered its first turn; the success rate is set up
  / tried, where tried leaves out injected faults and calls the end of the test cut short before either.
- abandoned: callers who hung up after --patience seconds without an answer (not failures: a real caller's
  choice, and the bot's slowness shows in setup success and dead air).
- dead air: per call, the longest silence while waiting for the bot (a distribution over calls) and the count of
  silences of at least --dead-air-ms (users/audio/dead_air.py).
- TTFA by turn: turn 1, 2, … up to MAX_TURN_INDEX (later turns counted with it), so a bot that answers turn 5
  slower than turn 1 shows.

Exact histograms (core/histogram.py): workers send counts, the master adds them (AudioStats carries this along).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from core.histogram import Histogram

if TYPE_CHECKING:
    from users.audio.audio_metrics import CallRecord

MAX_TURN_INDEX = 10
"""Turns kept apart for TTFA by turn; turn 10 and later share the last one (``10+``)."""


class CallOutcomes:
    """Setup, abandonment, dead air and TTFA by turn of the calls of one process (or merged from several)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.longest_silence = Histogram()
        self.ttfa_by_turn: dict[int, Histogram] = {}
        self.threshold_ms = 0.0

    def add(self, call: CallRecord) -> None:
        """Count one call."""
        c = self.counts
        if call.fault is None:
            answered = call.turns and call.turns[0].ttfa_ms is not None
            if answered or not call.cut_short:
                c["setup_tried"] += 1
                c["set_up"] += bool(answered)
            c["abandoned"] += call.abandoned
            if call.dead_air is not None:
                self.longest_silence.add(call.dead_air.longest_ms)
                c["dead_air"] += call.dead_air.over
                c["calls_with_dead_air"] += call.dead_air.over > 0
                self.threshold_ms = call.dead_air.threshold_ms
        for index, turn in enumerate(call.turns, 1):
            if turn.ttfa_ms is not None:
                self.ttfa_by_turn.setdefault(min(index, MAX_TURN_INDEX), Histogram()).add(turn.ttfa_ms)

    def to_message(self) -> dict[str, Any]:
        """A msgpack-friendly form (string keys, lists of pairs)."""
        return {
            "counts": dict(self.counts),
            "longest_silence": list(self.longest_silence.counts.items()),
            "ttfa_by_turn": {str(turn): list(h.counts.items()) for turn, h in self.ttfa_by_turn.items()},
            "threshold_ms": self.threshold_ms,
        }

    def merge_message(self, message: dict[str, Any]) -> None:
        """Add a worker's figures sent with to_message."""
        self.counts.update(message["counts"])
        self.longest_silence.merge(message["longest_silence"])
        for turn, pairs in message["ttfa_by_turn"].items():
            self.ttfa_by_turn.setdefault(int(turn), Histogram()).merge(pairs)
        self.threshold_ms = max(self.threshold_ms, message["threshold_ms"])

    def summary(self) -> dict[str, Any]:
        """The figures for summary.json's ``audio`` section: ``setup``, ``dead_air``, ``ttfa_by_turn_ms``."""
        c = self.counts
        rate = self.setup_success()
        return {
            "setup": {
                "tried": c["setup_tried"],
                "set_up": c["set_up"],
                "success_rate": None if rate is None else round(rate, 4),
            },
            "dead_air": {
                "threshold_ms": self.threshold_ms,
                "silences_over_threshold": c["dead_air"],
                "calls_with_dead_air": c["calls_with_dead_air"],
                "longest_silence_ms": self.longest_silence.summary(),
            },
            "ttfa_by_turn_ms": {
                (f"{turn}+" if turn == MAX_TURN_INDEX else str(turn)): self.ttfa_by_turn[turn].summary()
                for turn in sorted(self.ttfa_by_turn)
            },
        }

    def setup_success(self) -> float | None:
        """Calls set up / calls tried (the ``call_setup`` SLO), None before any call was tried."""
        tried = self.counts["setup_tried"]
        return self.counts["set_up"] / tried if tried else None
