"""Audio call metrics: one plain record per call, playback emulation, and mergeable totals.

Definitions (times from ``time.perf_counter()`` on the caller's side):

- connect: WebSocket handshake, from opening the TCP connection to the upgrade being accepted.
- TTFA (time to first audio): the moment the caller's last speech frame was sent → the first
  response audio arriving. Audio that arrives while the caller is still speaking does not count.
- response audio: milliseconds of audio in one response; real-time factor (RTF): the time the
  audio took to arrive, counting the last chunk's own length, over that length (1.0 = paced in real
  time, below 1 = faster, above 1 = the caller would hear gaps).
- underrun: a response chunk that arrived more than UNDERRUN_TOLERANCE_MS after the audio before it
  had finished playing (the caller hears a gap).
- mark round trip (Twilio): a mark arriving → the caller echoing it once the audio before it played.
- send lateness: actual - scheduled send time of each frame; a late generator is not a slow bot.

Distributions are users.llm.stream_metrics Histograms, so workers send counts and the master merges them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from core.histogram import Histogram
from users.audio.barge_in_metrics import BargeIn, BargeInStats
from users.audio.call_outcomes import CallOutcomes
from users.audio.call_plan import ABANDONED
from users.audio.dead_air import DeadAir, Silences

UNDERRUN_TOLERANCE_MS = 10.0
"""A chunk later than this after the end of the audio before it is a gap the caller hears."""

LATE_FRAME_MS = 20.0
"""Frames sent later than this after their scheduled time are counted as late."""


class Playback:
    """A phone's loudspeaker: plays received audio in real time, so marks are echoed when due."""

    __slots__ = ("end", "underruns")

    def __init__(self) -> None:
        self.end: float | None = None
        """When the audio queued so far will have finished playing (perf_counter seconds)."""
        self.underruns = 0

    def add(self, now: float, duration_s: float, continuing: bool) -> None:
        """Queue a chunk that arrived at ``now``; ``continuing`` when it belongs to a response under way."""
        if self.end is None or now > self.end:
            if continuing and self.end is not None and (now - self.end) * 1000 > UNDERRUN_TOLERANCE_MS:
                self.underruns += 1
            self.end = now
        self.end += duration_s

    def done_at(self, now: float) -> float:
        """When everything queued has played (``now`` if nothing is left)."""
        return now if self.end is None else max(now, self.end)

    def clear(self, now: float) -> None:
        """Drop the queued audio (the bot's ``clear``)."""
        self.end = now


@dataclass(slots=True)
class TurnRecord:
    """One thing the caller said and the bot's answer to it."""

    speech_end_at: float | None = None
    """perf_counter time the frame where the speech ends was sent."""
    first_audio_at: float | None = None
    last_audio_at: float | None = None
    audio_ms: float = 0.0
    last_chunk_ms: float = 0.0
    chunks: int = 0
    done: bool = False
    """The bot said the response is complete (raw ``done``, Realtime ``response.done``)."""
    finished_at: float | None = None
    """When the answer ended, or the caller gave up waiting for it."""
    error: str | None = None
    silences: Silences = field(default_factory=Silences)
    """Gaps inside the answer (users/audio/dead_air.py)."""

    @property
    def ttfa_ms(self) -> float | None:
        if self.first_audio_at is None or self.speech_end_at is None:
            return None
        return (self.first_audio_at - self.speech_end_at) * 1000

    @property
    def rtf(self) -> float | None:
        """Delivery time over audio length: 1.0 when the bot sends its audio at real-time pace."""
        if self.first_audio_at is None or self.last_audio_at is None or not self.audio_ms:
            return None
        delivery_ms = (self.last_audio_at - self.first_audio_at) * 1000 + self.last_chunk_ms
        return delivery_ms / self.audio_ms

    def add_audio(self, now: float, duration_ms: float) -> None:
        """Count audio that arrived at ``now`` (the kernel's arrival: users/common/arrival_clock.py) as the answer's;
        audio that arrived before the caller finished speaking, though read after, is not an answer to it."""
        if self.speech_end_at is not None and now < self.speech_end_at:
            return
        if self.first_audio_at is None:
            self.first_audio_at = now
        self.last_audio_at = now
        self.audio_ms += duration_ms
        self.last_chunk_ms = duration_ms
        self.chunks += 1
        self.silences.heard(now, duration_ms / 1000)


@dataclass(slots=True)
class CallRecord:
    """Everything measured about one call."""

    protocol: str
    started_at: float
    """Wall-clock time (epoch seconds) the call started."""
    user: int = 0
    connect_ms: float | None = None
    duration_ms: float | None = None
    turns: list[TurnRecord] = field(default_factory=list)
    lateness: Histogram = field(default_factory=Histogram)
    """Send lateness of every frame (ms)."""
    max_lateness_ms: float = 0.0
    late_frames: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0
    audio_sent_ms: float = 0.0
    marks_ms: list[float] = field(default_factory=list)
    underruns: int = 0
    error: str | None = None
    """Why the call failed (the server's fault or the network's), None when it succeeded."""
    connect_failed: bool = False
    fault: str | None = None
    """The fault injected on purpose into this call (drop, malformed, silence), if any."""
    fault_reaction: str | None = None
    """What the server did about the injected fault ("hung up (closed 1007)", "kept the line open" …)."""
    fault_reaction_ms: float | None = None
    """From the fault to the server's reaction."""
    after_fault: bool = False
    """This call checks that the bot still works right after an injected fault."""
    cut_short: bool = False
    """The end of the test hung up this call; what it measured counts, but it neither passed nor failed."""
    dead_air: DeadAir | None = None
    """The silences the caller sat through (set when the call ends)."""
    barge_ins: list[BargeIn] = field(default_factory=list)
    """The answers the caller speaks over (--barge-in-rate), planned before the call, timed during it."""

    def sent(self, size: int, lateness_ms: float, audio_ms: float) -> None:
        """Count one frame sent ``lateness_ms`` after its scheduled time."""
        lateness_ms = max(0.0, lateness_ms)
        self.lateness.add(lateness_ms)
        self.max_lateness_ms = max(self.max_lateness_ms, lateness_ms)
        self.late_frames += lateness_ms > LATE_FRAME_MS
        self.frames_sent += 1
        self.bytes_sent += size
        self.audio_sent_ms += audio_ms

    @property
    def abandoned(self) -> bool:
        """The caller ran out of --patience waiting for an answer and hung up: its choice, not a failure."""
        return self.error == ABANDONED

    @property
    def completed(self) -> bool:
        return self.error is None and self.fault is None and not self.connect_failed and not self.cut_short


HISTOGRAMS = ("connect_ms", "ttfa_ms", "response_audio_ms", "response_rtf", "mark_ms", "call_ms", "send_lateness_ms")
"""The distributions kept for audio calls."""

COUNTERS = (
    "calls",
    "completed",
    "failed",
    "cut_short",
    "connect_failures",
    "turns",
    "responses",
    "frames_sent",
    "bytes_sent",
    "frames_received",
    "bytes_received",
    "late_frames",
    "underruns",
    "recovered",
    "not_recovered",
)


class AudioStats:
    """Everything measured about audio calls in one process (or merged from several)."""

    def __init__(self) -> None:
        self.histograms: dict[str, Histogram] = {name: Histogram() for name in HISTOGRAMS}
        self.counts: Counter[str] = Counter()
        self.audio_sent_ms = 0.0
        self.audio_received_ms = 0.0
        self.max_lateness_ms = 0.0
        self.faults: Counter[str] = Counter()
        """Injected faults by kind."""
        self.reactions: Counter[str] = Counter()
        """What the server did about each injected fault, keyed ``kind: reaction``."""
        self.errors: Counter[str] = Counter()
        """Real failures by name."""
        self.protocols: Counter[str] = Counter()
        self.outcomes = CallOutcomes()
        self.barge_in = BargeInStats()

    def add(self, call: CallRecord) -> None:
        """Count one finished call."""
        h, c = self.histograms, self.counts
        c["calls"] += 1
        self.protocols[call.protocol] += 1
        self.outcomes.add(call)
        if call.connect_ms is not None:
            h["connect_ms"].add(call.connect_ms)
        h["send_lateness_ms"].merge(call.lateness.counts)
        self.max_lateness_ms = max(self.max_lateness_ms, call.max_lateness_ms)
        for name in ("frames_sent", "bytes_sent", "frames_received", "bytes_received", "late_frames", "underruns"):
            c[name] += getattr(call, name)
        self.audio_sent_ms += call.audio_sent_ms
        h["mark_ms"].add_all(call.marks_ms)
        self.barge_in.add(call.barge_ins)
        for turn in call.turns:
            c["turns"] += 1
            if turn.ttfa_ms is not None:
                h["ttfa_ms"].add(turn.ttfa_ms)
                c["responses"] += 1
                self.audio_received_ms += turn.audio_ms
                if turn.finished_at is not None:  # a whole answer: its length and pace mean something
                    h["response_audio_ms"].add(turn.audio_ms)
                    if turn.rtf is not None:
                        h["response_rtf"].add(turn.rtf)
        if call.cut_short:
            c["cut_short"] += 1
        elif call.fault is not None:
            self.faults[call.fault] += 1
            self.reactions[f"{call.fault}: {call.fault_reaction or 'none'}"] += 1
        elif call.abandoned:
            pass  # counted by self.outcomes: neither a failure nor a completed call
        elif call.error is not None:
            c["failed"] += 1
            c["connect_failures"] += call.connect_failed
            self.errors[call.error] += 1
        else:
            c["completed"] += 1
            if call.duration_ms is not None:
                h["call_ms"].add(call.duration_ms)
        if call.after_fault and call.fault is None and not call.cut_short:
            c["recovered" if call.error is None else "not_recovered"] += 1

    def to_message(self) -> dict[str, Any]:
        """A compact, msgpack-friendly form for sending to the master."""
        return {
            "histograms": {name: list(h.counts.items()) for name, h in self.histograms.items()},
            "counts": dict(self.counts),
            "audio_ms": [self.audio_sent_ms, self.audio_received_ms],
            "max_lateness_ms": self.max_lateness_ms,
            "faults": dict(self.faults),
            "reactions": dict(self.reactions),
            "errors": dict(self.errors),
            "protocols": dict(self.protocols),
            "outcomes": self.outcomes.to_message(),
            "barge_in": self.barge_in.to_message(),
        }

    def merge_message(self, message: dict[str, Any]) -> None:
        """Add a worker's figures sent with to_message."""
        for name, pairs in message["histograms"].items():
            self.histograms[name].merge(pairs)
        self.counts.update(message["counts"])
        sent, received = message["audio_ms"]
        self.audio_sent_ms += sent
        self.audio_received_ms += received
        self.max_lateness_ms = max(self.max_lateness_ms, message["max_lateness_ms"])
        self.faults.update(message["faults"])
        self.reactions.update(message["reactions"])
        self.errors.update(message["errors"])
        self.protocols.update(message["protocols"])
        self.outcomes.merge_message(message["outcomes"])
        self.barge_in.merge_message(message.get("barge_in") or {})

    def summary(self, duration_s: float) -> dict[str, Any]:
        """The ``audio`` section of summary.json."""
        c = self.counts
        section: dict[str, Any] = {
            "protocols": dict(self.protocols),
            "calls": {
                "started": c["calls"],
                "completed": c["completed"],
                "failed": c["failed"],
                "connect_failures": c["connect_failures"],
                "injected_faults": sum(self.faults.values()),
                "cut_short": c["cut_short"],
                "abandoned": self.outcomes.counts["abandoned"],
                "completed_per_s": round(c["completed"] / duration_s, 3) if duration_s > 0 else None,
            },
            "turns": c["turns"],
            "responses": c["responses"],
        }
        for name, histogram in self.histograms.items():
            section[name] = histogram.summary()
        section["send_lateness_ms"]["max"] = round(self.max_lateness_ms, 2)
        section["late_frames"] = c["late_frames"]
        section["late_frame_ms"] = LATE_FRAME_MS
        section["underruns"] = c["underruns"]
        section["frames_sent"], section["bytes_sent"] = c["frames_sent"], c["bytes_sent"]
        section["frames_received"], section["bytes_received"] = c["frames_received"], c["bytes_received"]
        section["audio_sent_s"] = round(self.audio_sent_ms / 1000, 3)
        section["audio_received_s"] = round(self.audio_received_ms / 1000, 3)
        section["send_rtf"] = round(self.audio_sent_ms / 1000 / duration_s, 3) if duration_s > 0 else None
        section["faults"] = {
            "injected": dict(self.faults),
            "reactions": dict(self.reactions),
            "recovered": c["recovered"],
            "not_recovered": c["not_recovered"],
        }
        section["real_failures"] = dict(self.errors)
        if (barge_in := self.barge_in.summary()) is not None:
            section["barge_in"] = barge_in
        return section | self.outcomes.summary()
