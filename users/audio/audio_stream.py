"""AudioStreamUser: a caller talking to a voice assistant over a WebSocket, in real time.

Each task is one call: connect, say an utterance (a WAV file) frame by frame at real-time pace, stop
or go silent, wait for the bot's spoken answer, maybe speak again, hang up. Stats rows, named
``audio:<protocol>``:

- ``CONNECT``: the WebSocket handshake (refused calls fail here).
- ``TTFA``: the end of the caller's speech → the first response audio, once per turn (the headline).
- ``CALL``: the whole call, where failures of connected calls are counted.
- ``ABANDON``: a call the caller hung up out of --patience, waiting for an answer (never a failure).
- ``BARGE``: how fast the bot stopped talking when the caller spoke over its answer (--barge-in-rate,
  users/audio/barge_in.py); a bot that talked on is the failure ``bot did not stop``.
- ``FAULT`` (``audio:<protocol> <kind>``): calls that misbehave on purpose (``--fault-rate``), timed
  until the bot reacted; never failures, so real failures stay apart.

Everything else (send lateness, response audio, marks, faults …) goes to summary.json's ``audio``
section: each call's CallRecord is published (users/common/records.py), also when the end of the
test cuts a call short (plugins/metrics/audio_report.py listens).
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from gevent import GreenletExit
from locust import User, task

from core.errors import InputError
from core.options import require_positive
from core.settings import Settings, setting
from core.tls import insecure_option
from users.audio.audio_call import AudioCall
from users.audio.audio_metrics import CallRecord
from users.audio.audio_protocols import (
    PROTOCOLS,
    REALTIME_APIS,
    WireFormat,
    make_protocol,
)
from users.audio.barge_in import BargeInSettings, barge_in_settings, plan_barge_ins, report_barge_ins
from users.audio.call_plan import COMMIT, FAULTS, SILENCE, STOP, CallPlan
from users.audio.caller_settings import CallerSettings, utterances_for
from users.audio.dead_air import dead_air
from users.audio.utterances import Deck
from users.common import records
from users.common.chat_base import RhythmSettings, between, user_random
from users.common.in_flight import record_cut_short
from users.common.probe import judged, run_probe
from users.llm.streaming_chat import API_KEY_VARIABLES
from users.ws.handshake import ws_headers
from users.ws.ws_connection import websocket_url
from users.ws.ws_limits import WsLimitSettings

DEFAULT_AUDIO_FILE = Path(__file__).resolve().parents[2] / "datasets" / "speech_sample_16k.wav"
"""The utterance callers say unless --audio-file names another: about three seconds of synthetic speech."""

END_OF_SPEECH = ("auto", SILENCE, STOP, COMMIT)
"""--end-of-speech values; auto = commit for openai-realtime, silence otherwise."""

FRAME_MS = (1.0, 1000.0)
"""Shortest and longest audio frame, in ms (--chunk-ms, or --chunk-size at the wire's rate): a caller cannot send
thousands of frames a second on time, and a frame over a second is a recording, not a stream (and a frame of 1e9
ms would not fit in memory)."""

MAX_INTERVAL_MS = 60_000.0
"""Longest --interval between frames: a minute of silence between frames is a stalled call, not a paced one."""

_user_numbers = itertools.count()


class CallFailure(Exception):
    """A failed call or connection; the message is its failure name."""


@dataclass(frozen=True)
class AudioSettings(Settings):
    """AudioStreamUser's options, and the calls they describe (frames, pacing, end of speech, faults)."""

    audio_path: str = setting("/ws/audio", "Path of the voice WebSocket on --host (or a full ws:// URL)", web_ui=True)
    audio_protocol: str = setting("raw", "Wire protocol of the voice calls", choices=PROTOCOLS, web_ui=True)
    audio_file: str = setting("", "16-bit PCM WAV the caller says (default: a sample)", web_ui=True)
    chunk_ms: float = setting(20.0, "Milliseconds of audio per frame")
    chunk_size: float = setting(0.0, "KB of audio per frame instead of --chunk-ms")
    interval: float = setting(0.0, "ms between frames (0 = real time for the frame)")
    sample_rate: int = setting(16000, "raw: sample rate of the PCM16 sent")
    turns: int = setting(1, "Times the caller speaks and waits for an answer per call", web_ui=True)
    end_of_speech: str = setting(
        "auto",
        "After speaking: keep sending silence, stop sending, or commit (openai-realtime); auto picks",
        choices=END_OF_SPEECH,
    )
    realtime_api: str = setting("ga", "openai-realtime: event shape", choices=REALTIME_APIS)
    response_timeout: float = setting(10.0, "Seconds to wait for answer audio")
    response_gap_ms: float = setting(700.0, "Quiet that ends an answer (no done event)")
    fault_rate: float = setting(0.0, "Share of calls that misbehave on purpose")
    fault_kinds: str = setting(",".join(FAULTS), "Faults to inject: drop,malformed,silence")
    fault_silence: float = setting(15.0, "Seconds a silent fault waits for a hang-up")

    def check(self) -> None:
        if not 4000 <= self.sample_rate <= 48000:
            raise InputError(f"--sample-rate: {self.sample_rate} is not a rate from 4000 to 48000 Hz")
        self._check_frames()
        require_positive(self.interval, "--interval", allow_zero=True)
        if self.interval > MAX_INTERVAL_MS:
            raise InputError(f"--interval: {self.interval:g} ms between frames; give at most {MAX_INTERVAL_MS:g} ms")
        if self.speech_end == COMMIT and self.audio_protocol != "openai-realtime":
            raise InputError("--end-of-speech commit: only openai-realtime can commit; use silence or stop")
        if self.turns < 1:
            raise InputError("--turns: must be 1 or more")
        if not 0 <= self.fault_rate <= 1:
            raise InputError(f"--fault-rate: must be from 0 to 1, got {self.fault_rate:g}")
        unknown = [kind for kind in self.faults if kind not in FAULTS]
        if unknown or not self.faults:
            named = ", ".join(unknown) or "empty list"
            raise InputError(f"--fault-kinds: unknown {named}; choose from {', '.join(FAULTS)}")
        require_positive(self.response_timeout, "--response-timeout")
        require_positive(self.response_gap_ms, "--response-gap-ms")
        require_positive(self.fault_silence, "--fault-silence")

    def _check_frames(self) -> None:
        require_positive(self.chunk_size, "--chunk-size", allow_zero=True)
        if not self.chunk_size:
            require_positive(self.chunk_ms, "--chunk-ms")
        elif not self.frame_bytes:
            raise InputError(f"--chunk-size: {self.chunk_size:g} KB is less than one sample")
        low, high = FRAME_MS
        if not low <= self.frame_ms <= high:
            given = f"--chunk-size: {self.chunk_size:g} KB is {self.frame_ms:g} ms" if self.chunk_size else ""
            given = given or f"--chunk-ms: {self.chunk_ms:g} ms"
            raise InputError(f"{given} of audio per frame; give {low:g}-{high:g} ms")

    @cached_property
    def wire(self) -> WireFormat:
        """The audio format on the wire (sample size, rate) of --audio-protocol at --sample-rate."""
        return make_protocol(self.audio_protocol, self.sample_rate).wire

    @cached_property
    def frame_bytes(self) -> int:
        """Bytes of audio per frame: --chunk-size KB (whole samples), else --chunk-ms of audio."""
        if self.chunk_size:
            return int(self.chunk_size * 1024) // self.wire.sample_bytes * self.wire.sample_bytes
        return self.wire.bytes_for_ms(self.chunk_ms)

    @property
    def frame_ms(self) -> float:
        """Milliseconds of audio per frame."""
        return self.wire.duration_ms(self.frame_bytes)

    @property
    def interval_s(self) -> float:
        """Seconds between frame sends: --interval, else the frame's audio length (real time)."""
        return (self.interval or self.frame_ms) / 1000

    @property
    def speech_end(self) -> str:
        """How the caller ends its speech: --end-of-speech, with auto resolved for the protocol."""
        if self.end_of_speech != "auto":
            return self.end_of_speech
        return COMMIT if self.audio_protocol == "openai-realtime" else SILENCE

    @cached_property
    def faults(self) -> tuple[str, ...]:
        """The --fault-kinds a faulty call picks from."""
        return tuple(kind.strip() for kind in self.fault_kinds.split(",") if kind)

    @property
    def utterance_file(self) -> Path:
        return Path(self.audio_file or DEFAULT_AUDIO_FILE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register AudioStreamUser's options."""
    AudioSettings.add_arguments(parser)
    CallerSettings.add_arguments(parser)
    BargeInSettings.add_arguments(parser)


def caller_pacing(options: Any) -> tuple[tuple[float, float], int | None]:
    """The caller's think time and seed (--think-time and --seed, as every user reads them)."""
    rhythm = RhythmSettings.read(options)
    return rhythm.think_time_s, rhythm.seed_number


def check_options(options: Any) -> None:
    """Raise InputError for a bad audio option (reading and encoding the audio file on the way)."""
    settings, caller = AudioSettings.read(options), CallerSettings.read(options)
    caller_pacing(options)
    caller.check_with(settings.audio_file, settings.response_timeout)
    utterances_for(settings, caller)
    barge_in_settings(options, settings.turns)


class AudioStreamUser(User):
    """Places voice calls over a WebSocket and times them as a caller hears them.

    Speaks raw PCM16, Twilio Media Streams or OpenAI Realtime (``--audio-protocol``). Between calls it
    waits ``--think-time``; right after an injected fault it calls again at once, so the next call
    checks that the bot recovered.
    """

    audio_path: str
    """Path of the voice WebSocket (--audio-path)."""

    protocol: str
    """Wire protocol (--audio-protocol)."""

    turns: int
    """Utterances per call (--turns)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        settings = AudioSettings.read(environment.parsed_options)
        self.settings = settings
        self.audio_path, self.protocol, self.turns = settings.audio_path, settings.audio_protocol, settings.turns
        self.think_time, seed = caller_pacing(environment.parsed_options)
        self.caller = CallerSettings.read(environment.parsed_options)
        self.utterances = utterances_for(settings, self.caller)
        self.barge_in = barge_in_settings(environment.parsed_options, settings.turns)
        runner = environment.runner
        self.user_number = next(_user_numbers) + 100_000 * (getattr(runner, "worker_index", 0) or 0)
        self.rng = user_random(seed, self.user_number)
        self.deck = Deck(len(self.utterances), self.rng)
        self.name = f"audio:{settings.audio_protocol}"
        self.after_fault = False
        self.call: AudioCall | None = None
        self.plan = CallPlan(
            url=websocket_url(self.host or "", settings.audio_path),
            turns=settings.turns,
            end_of_speech=settings.speech_end,
            interval_s=settings.interval_s,
            response_timeout_s=settings.response_timeout,
            response_gap_s=settings.response_gap_ms / 1000,
            fault_silence_s=settings.fault_silence,
            headers=self._headers(),
            insecure=insecure_option(environment.parsed_options),
            limits=WsLimitSettings.read(environment.parsed_options),
            patience_s=self.caller.patience_s,
        )

    def _headers(self) -> tuple[str, ...]:
        realtime = self.settings.audio_protocol == "openai-realtime"
        # Realtime calls, like streaming chat, may take the key from CHATBOT_API_KEY or OPENAI_API_KEY.
        headers = ws_headers(self.environment.parsed_options, API_KEY_VARIABLES if realtime else ())
        if (
            realtime
            and self.settings.realtime_api == "beta"
            and not any(line.lower().startswith("openai-beta:") for line in headers)
        ):
            headers = ("OpenAI-Beta: realtime=v1", *headers)
        return headers

    def wait_time(self) -> float:
        if self.after_fault:
            return 0.0
        return between(self.rng, self.think_time)

    @classmethod
    def probe(cls, environment: Any) -> str | None:
        """Set one call up before the load (connect, open the session, hang up: no turn), counted nowhere."""

        def connect_only(user: AudioStreamUser) -> None:
            user.plan = replace(user.plan, turns=0)
            user.place_call()

        path = AudioSettings.read(environment.parsed_options).audio_path
        return judged(run_probe(cls, environment, connect_only), cls.__name__, path=f"WebSocket {path}")

    @task
    def place_call(self) -> None:
        """One call: connect, speak, listen, hang up; report its rows."""
        settings = self.settings
        fault = None
        if settings.fault_rate and self.rng.random() < settings.fault_rate:
            fault = self.rng.choice(settings.faults)
        protocol = make_protocol(
            settings.audio_protocol,
            settings.sample_rate,
            settings.frame_ms,
            settings.realtime_api,
            server_vad=settings.speech_end != COMMIT,
        )
        record = CallRecord(protocol=settings.audio_protocol, started_at=time.time(), user=self.user_number)
        record.after_fault = self.after_fault
        record.barge_ins = plan_barge_ins(self.barge_in, self.plan.turns, self.rng)
        self.reported_turns = 0
        self.call = AudioCall(
            self.plan,
            protocol,
            self.utterances[self.deck.deal()],
            record,
            fault,
            on_connect=self._connected,
            on_turn=lambda _turn: self._turn_over(record),
        )
        try:
            self.call.run()
        except GreenletExit:  # the test is ending: what was measured so far still counts
            record.cut_short = True
            self._report_turns(record)
            self._publish(record)
            elapsed_ms = (time.time() - record.started_at) * 1000
            record_cut_short(self.environment, "CALL", self.name, record.started_at, elapsed_ms)
            raise
        finally:
            self.call = None
        self.after_fault = record.fault is not None
        self._report(record)

    def on_stop(self) -> None:
        if self.call is not None:
            self.call.hang_up()

    def _connected(self, record: CallRecord, failure: str | None) -> None:
        self.environment.events.request.fire(
            request_type="CONNECT",
            name=self.name,
            response_time=record.connect_ms,
            response_length=0,
            exception=CallFailure(failure) if failure else None,
            context={},
            start_time=record.started_at,
        )

    def _turn_over(self, record: CallRecord) -> None:
        """A turn was answered: report its TTFA, and give the caller its next utterance to say."""
        self._report_turns(record)
        if self.call is not None and len(self.utterances) > 1:
            self.call.utterance = self.utterances[self.deck.deal()]

    def _report_turns(self, record: CallRecord) -> None:
        """A TTFA row for each turn answered since the last report."""
        for turn in record.turns[self.reported_turns :]:
            if turn.ttfa_ms is None:
                continue
            self.reported_turns += 1
            self.environment.events.request.fire(
                request_type="TTFA",
                name=self.name,
                response_time=turn.ttfa_ms,
                response_length=0,
                exception=None,
                context={},
                start_time=time.time() - (time.perf_counter() - (turn.speech_end_at or time.perf_counter())),
            )

    def _publish(self, record: CallRecord) -> None:
        record.dead_air = dead_air(record, self.caller.dead_air_ms, time.perf_counter())
        records.publish(self.environment, record)  # once per call, finished or cut short by the end of the test
        report_barge_ins(self.environment, self.name, record)

    def _report(self, record: CallRecord) -> None:
        self._publish(record)
        if record.connect_failed:
            return  # the CONNECT row carries it
        request = self.environment.events.request
        if record.fault is not None:
            request.fire(
                request_type="FAULT",
                name=f"{self.name} {record.fault}",
                response_time=record.fault_reaction_ms,
                response_length=record.bytes_received,
                exception=None,
                context={},
                start_time=record.started_at,
            )
            return
        request.fire(
            request_type="ABANDON" if record.abandoned else "CALL",  # the caller's choice: never a failure
            name=self.name,
            response_time=record.duration_ms,
            response_length=record.bytes_received,
            exception=CallFailure(record.error) if record.error and not record.abandoned else None,
            context={},
            start_time=record.started_at,
        )
