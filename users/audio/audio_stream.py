"""AudioStreamUser: a caller talking to a voice assistant over a WebSocket, in real time.

Each task is one call: connect, say an utterance (a WAV file) frame by frame at real-time pace, stop
or go silent, wait for the bot's spoken answer, maybe speak again, hang up. Stats rows, named
``audio:<protocol>``:

- ``CONNECT``: the WebSocket handshake (refused calls fail here).
- ``TTFA``: the end of the caller's speech → the first response audio, once per turn (the headline).
- ``CALL``: the whole call, where failures of connected calls are counted.
- ``FAULT`` (``audio:<protocol> <kind>``): calls that misbehave on purpose (``--fault-rate``), timed
  until the bot reacted; never failures, so real failures stay apart.

Everything else (send lateness, response audio, marks, faults …) goes to summary.json's ``audio``
section: each call's CallRecord is published (users/common/records.py), also when the end of the
test cuts a call short (plugins/metrics/audio_report.py listens).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gevent import GreenletExit
from locust import User, task

from core.errors import InputError
from core.options import add_option, option, parse_seconds_range, require_positive
from core.tls import insecure_option
from users.audio.audio_call import AudioCall
from users.audio.audio_codec import read_wav
from users.audio.audio_metrics import CallRecord
from users.audio.audio_protocols import PROTOCOLS, REALTIME_APIS, Utterance, make_protocol, prepare_utterance
from users.audio.call_plan import COMMIT, FAULTS, SILENCE, STOP, CallPlan
from users.common import records
from users.llm.streaming_chat import API_KEY_VARIABLES

DEFAULT_AUDIO_FILE = Path(__file__).resolve().parents[2] / "datasets" / "speech_sample_16k.wav"
"""The utterance callers say unless --audio-file names another: about three seconds of synthetic speech."""

END_OF_SPEECH = ("auto", SILENCE, STOP, COMMIT)
"""--end-of-speech values; auto = commit for openai-realtime, silence otherwise."""

_user_numbers = itertools.count()


class CallFailure(Exception):
    """A failed call or connection; the message is its failure name."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register AudioStreamUser's options."""
    add_option(parser, "--audio-path", default="/ws/audio", help="Path of the voice WebSocket on --host")
    add_option(parser, "--audio-protocol", default="raw", choices=PROTOCOLS, help="Wire protocol of the voice calls")
    add_option(parser, "--audio-file", default="", help="16-bit PCM WAV the caller says (default: a sample)")
    add_option(parser, "--chunk-ms", type=float, default=20.0, help="Milliseconds of audio per frame")
    add_option(parser, "--chunk-size", type=float, default=0.0, help="KB of audio per frame instead of --chunk-ms")
    add_option(parser, "--interval", type=float, default=0.0, help="ms between frames (0 = real time for the frame)")
    add_option(parser, "--sample-rate", type=int, default=16000, help="raw: sample rate of the PCM16 sent")
    add_option(parser, "--turns", type=int, default=1, help="Times the caller speaks and waits for an answer per call")
    add_option(
        parser,
        "--end-of-speech",
        default="auto",
        choices=END_OF_SPEECH,
        help="After speaking: keep sending silence, stop sending, or commit (openai-realtime); auto picks",
    )
    add_option(parser, "--realtime-api", default="ga", choices=REALTIME_APIS, help="openai-realtime: event shape")
    add_option(parser, "--response-timeout", type=float, default=10.0, help="Seconds to wait for answer audio")
    add_option(parser, "--response-gap-ms", type=float, default=700.0, help="Quiet that ends an answer (no done event)")
    add_option(parser, "--fault-rate", type=float, default=0.0, help="Share of calls that misbehave on purpose")
    add_option(parser, "--fault-kinds", default=",".join(FAULTS), help="Faults to inject: drop,malformed,silence")
    add_option(parser, "--fault-silence", type=float, default=15.0, help="Seconds a silent fault waits for a hang-up")


@dataclass(frozen=True, slots=True)
class AudioSettings:
    """The audio options of a run, parsed and checked."""

    path: str
    protocol: str
    audio_file: Path
    frame_ms: float
    frame_bytes: int
    interval_s: float
    sample_rate: int
    turns: int
    end_of_speech: str
    realtime_api: str
    response_timeout_s: float
    response_gap_s: float
    fault_rate: float
    fault_kinds: tuple[str, ...]
    fault_silence_s: float
    think_time: tuple[float, float]
    seed: int | None


def audio_settings(options: Any) -> AudioSettings:
    """Parse and check the audio options; raises InputError naming the first bad one."""
    protocol_name = option(options, "audio_protocol", "raw")
    if protocol_name not in PROTOCOLS:
        raise InputError(f"--audio-protocol: unknown {protocol_name!r}; choose one of {', '.join(PROTOCOLS)}")
    sample_rate = int(option(options, "sample_rate", 16000))
    if not 4000 <= sample_rate <= 48000:
        raise InputError(f"--sample-rate: {sample_rate} is not a rate from 4000 to 48000 Hz")
    wire = make_protocol(protocol_name, sample_rate).wire
    chunk_kb = require_positive(float(option(options, "chunk_size", 0.0)), "--chunk-size", allow_zero=True)
    if chunk_kb:
        frame_bytes = int(chunk_kb * 1024) // wire.sample_bytes * wire.sample_bytes
        if not frame_bytes:
            raise InputError(f"--chunk-size: {chunk_kb:g} KB is less than one sample")
    else:
        frame_bytes = wire.bytes_for_ms(require_positive(float(option(options, "chunk_ms", 20.0)), "--chunk-ms"))
    frame_ms = wire.duration_ms(frame_bytes)
    interval_ms = require_positive(float(option(options, "interval", 0.0)), "--interval", allow_zero=True)
    end_of_speech = option(options, "end_of_speech", "auto")
    if end_of_speech == "auto":
        end_of_speech = COMMIT if protocol_name == "openai-realtime" else SILENCE
    if end_of_speech == COMMIT and protocol_name != "openai-realtime":
        raise InputError("--end-of-speech commit: only openai-realtime can commit; use silence or stop")
    if end_of_speech not in END_OF_SPEECH:
        raise InputError(f"--end-of-speech: unknown {end_of_speech!r}; choose one of {', '.join(END_OF_SPEECH)}")
    turns = int(option(options, "turns", 1))
    if turns < 1:
        raise InputError("--turns: must be 1 or more")
    fault_rate = float(option(options, "fault_rate", 0.0))
    if not 0 <= fault_rate <= 1:
        raise InputError(f"--fault-rate: must be from 0 to 1, got {fault_rate:g}")
    kinds = tuple(kind.strip() for kind in str(option(options, "fault_kinds", ",".join(FAULTS))).split(",") if kind)
    unknown = [kind for kind in kinds if kind not in FAULTS]
    if unknown or not kinds:
        named = ", ".join(unknown) or "empty list"
        raise InputError(f"--fault-kinds: unknown {named}; choose from {', '.join(FAULTS)}")
    seed_text = str(option(options, "seed", "")).strip()
    audio_file = Path(option(options, "audio_file", "") or DEFAULT_AUDIO_FILE)
    return AudioSettings(
        path=option(options, "audio_path", "/ws/audio"),
        protocol=protocol_name,
        audio_file=audio_file,
        frame_ms=frame_ms,
        frame_bytes=frame_bytes,
        interval_s=(interval_ms or frame_ms) / 1000,
        sample_rate=sample_rate,
        turns=turns,
        end_of_speech=end_of_speech,
        realtime_api=option(options, "realtime_api", "ga"),
        response_timeout_s=require_positive(float(option(options, "response_timeout", 10.0)), "--response-timeout"),
        response_gap_s=require_positive(float(option(options, "response_gap_ms", 700.0)), "--response-gap-ms") / 1000,
        fault_rate=fault_rate,
        fault_kinds=kinds,
        fault_silence_s=require_positive(float(option(options, "fault_silence", 15.0)), "--fault-silence"),
        think_time=parse_seconds_range(option(options, "think_time", "1-3"), "--think-time"),
        seed=int(seed_text) if seed_text.lstrip("-").isdigit() else None,
    )


def check_options(options: Any) -> None:
    """Raise InputError for a bad audio option (reading and encoding the audio file on the way)."""
    settings = audio_settings(options)
    utterance_for(settings)


@lru_cache(maxsize=8)
def _utterance(path: Path, protocol: str, sample_rate: int, frame_bytes: int) -> Utterance:
    samples, rate = read_wav(path)
    return prepare_utterance(samples, rate, make_protocol(protocol, sample_rate), frame_bytes)


def utterance_for(settings: AudioSettings) -> Utterance:
    """The caller's utterance in the run's protocol, encoded once per process."""
    return _utterance(settings.audio_file, settings.protocol, settings.sample_rate, settings.frame_bytes)


def websocket_url(host: str, path: str) -> str:
    """The ws(s):// URL of ``path`` on ``host`` (http → ws, https → wss; ws(s) hosts are kept)."""
    parts = urlsplit(host)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/{path.lstrip('/')}"


class AudioStreamUser(User):
    """Places voice calls over a WebSocket and times them as a caller hears them.

    Speaks raw PCM16, Twilio Media Streams or OpenAI Realtime (``--audio-protocol``). Between calls it
    waits ``--think-time``; right after an injected fault it calls again at once, so the next call
    checks that the bot recovered.
    """

    audio_path: str = "/ws/audio"
    """Path of the voice WebSocket (--audio-path)."""

    protocol: str = "raw"
    """Wire protocol (--audio-protocol)."""

    turns: int = 1
    """Utterances per call (--turns)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        settings = audio_settings(environment.parsed_options)
        self.settings = settings
        self.audio_path, self.protocol, self.turns = settings.path, settings.protocol, settings.turns
        self.utterance = utterance_for(settings)
        runner = environment.runner
        self.user_number = next(_user_numbers) + 100_000 * (getattr(runner, "worker_index", 0) or 0)
        seed = settings.seed
        self.rng = random.Random(seed * 1_000_003 + self.user_number) if seed is not None else random.Random()
        self.name = f"audio:{settings.protocol}"
        self.after_fault = False
        self.call: AudioCall | None = None
        self.plan = CallPlan(
            url=websocket_url(self.host or "", settings.path),
            turns=settings.turns,
            end_of_speech=settings.end_of_speech,
            interval_s=settings.interval_s,
            response_timeout_s=settings.response_timeout_s,
            response_gap_s=settings.response_gap_s,
            fault_silence_s=settings.fault_silence_s,
            headers=self._headers(),
            insecure=insecure_option(environment.parsed_options),
        )

    def _headers(self) -> tuple[str, ...]:
        if self.settings.protocol != "openai-realtime":
            return ()
        options = self.environment.parsed_options
        key = option(options, "api_key", "") or next(
            (os.environ[name] for name in API_KEY_VARIABLES if os.environ.get(name)), ""
        )
        headers = [f"Authorization: Bearer {key}"] if key else []
        if self.settings.realtime_api == "beta":
            headers.append("OpenAI-Beta: realtime=v1")
        return tuple(headers)

    def wait_time(self) -> float:
        if self.after_fault:
            return 0.0
        low, high = self.settings.think_time
        return low if low == high else self.rng.uniform(low, high)

    @task
    def place_call(self) -> None:
        """One call: connect, speak, listen, hang up; report its rows."""
        settings = self.settings
        fault = None
        if settings.fault_rate and self.rng.random() < settings.fault_rate:
            fault = self.rng.choice(settings.fault_kinds)
        protocol = make_protocol(
            settings.protocol,
            settings.sample_rate,
            settings.frame_ms,
            settings.realtime_api,
            server_vad=settings.end_of_speech != COMMIT,
        )
        record = CallRecord(protocol=settings.protocol, started_at=time.time(), user=self.user_number)
        record.after_fault = self.after_fault
        self.reported_turns = 0
        self.call = AudioCall(
            self.plan,
            protocol,
            self.utterance,
            record,
            fault,
            on_connect=self._connected,
            on_turn=lambda _turn: self._report_turns(record),
        )
        try:
            self.call.run()
        except GreenletExit:  # the test is ending: what was measured so far still counts
            record.cut_short = True
            self._report_turns(record)
            self._publish(record)
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
        records.publish(self.environment, record)  # once per call, finished or cut short by the end of the test

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
            request_type="CALL",
            name=self.name,
            response_time=record.duration_ms,
            response_length=record.bytes_received,
            exception=CallFailure(record.error) if record.error else None,
            context={},
            start_time=record.started_at,
        )
