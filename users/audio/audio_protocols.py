"""The wire protocols a simulated caller speaks: raw PCM16, Twilio Media Streams and OpenAI Realtime.

Each preset is a plain class that builds the messages a caller sends (a ``bytes`` message goes out as
a binary WebSocket frame, a ``str`` as a text frame) and turns what the bot sends into ServerEvents.
No network and no Locust here, so every preset is tested on its own; users/audio/audio_call.py does the I/O.

- ``raw``: binary PCM16 frames up (16 kHz unless ``--sample-rate``); down, binary audio in the same
  format, or JSON text: ``{"type": "audio", "audio": <base64>}``, ``{"type": "done"}``, ``{"type": "error"}``.
- ``twilio``: the load tester plays Twilio: ``connected``, ``start``, one ``media`` event per frame
  (base64 8 kHz μ-law), ``mark`` echoes, ``stop``; the bot sends ``media``, ``mark`` and ``clear``.
- ``openai-realtime``: ``session.update``, ``input_audio_buffer.append`` (base64 PCM16 at 24 kHz),
  ``commit`` and ``response.create``; both the GA and the beta names of the server's events are read.
"""

from __future__ import annotations

import base64
import json
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from users.audio.audio_codec import (
    frame_peaks,
    last_voiced_frame,
    mulaw_encode,
    pcm16_bytes,
    resample,
    split_frames,
)

Message = bytes | str
"""One WebSocket message: bytes go out as a binary frame, str as a text frame."""

AUDIO, DONE, MARK, CLEAR, ERROR, READY, OTHER = "audio", "done", "mark", "clear", "error", "ready", "other"
"""Kinds of ServerEvent."""


@dataclass(frozen=True, slots=True)
class WireFormat:
    """How audio travels on the wire: ``pcm16`` (little-endian) or ``mulaw``, mono, at ``rate`` Hz."""

    encoding: str
    rate: int

    @property
    def sample_bytes(self) -> int:
        return 2 if self.encoding == "pcm16" else 1

    @property
    def silence_byte(self) -> int:
        """The byte that fills silence: zero samples, or μ-law's 0xFF."""
        return 0xFF if self.encoding == "mulaw" else 0x00

    def bytes_for_ms(self, ms: float) -> int:
        """Bytes of ``ms`` milliseconds of audio, a whole number of samples."""
        return max(1, round(self.rate * ms / 1000)) * self.sample_bytes

    def duration_ms(self, size: int) -> float:
        """Milliseconds of audio in ``size`` bytes."""
        return size / self.sample_bytes / self.rate * 1000

    def encode(self, samples: np.ndarray) -> bytes:
        """Samples (int16 at this rate) in this encoding."""
        return mulaw_encode(samples) if self.encoding == "mulaw" else pcm16_bytes(samples)


@dataclass(slots=True)
class ServerEvent:
    """Something the bot said that matters to the caller."""

    kind: str
    audio_bytes: int = 0
    """Decoded size of the audio carried (AUDIO)."""
    name: str = ""
    """The mark's name (MARK), the error text (ERROR) or the response status (DONE)."""


@dataclass(frozen=True, slots=True)
class Utterance:
    """What the caller says, encoded once per process before any call starts."""

    payloads: tuple[Message, ...]
    """One pre-encoded payload per frame (raw bytes, or base64 text for the JSON protocols)."""
    silence: Message
    """One pre-encoded frame of silence, sent while the caller listens on an open line."""
    frame_ms: float
    """Audio per frame."""
    last_voiced: int
    """Index of the frame in which the speech ends (trailing silence in the file is not speech)."""

    @property
    def audio_ms(self) -> float:
        return len(self.payloads) * self.frame_ms


def b64_size(text: str) -> int:
    """The decoded size of base64 text, without decoding it."""
    padding = 2 if text.endswith("==") else 1 if text.endswith("=") else 0
    return len(text) // 4 * 3 - padding


class AudioProtocol(ABC):
    """One preset: what the caller sends and how it reads the bot, as pure message building and parsing."""

    name: ClassVar[str]
    wire: WireFormat

    def encode_payload(self, frame: bytes) -> Message:
        """A frame's audio as carried in this protocol's message (done once, before calls start)."""
        return base64.b64encode(frame).decode("ascii")

    def opening(self) -> list[Message]:
        """Messages sent as soon as the connection is open."""
        return []

    @property
    def awaits_ready(self) -> bool:
        """Whether the caller waits for a READY event before speaking."""
        return False

    @abstractmethod
    def audio_message(self, payload: Message) -> Message:
        """The message that carries one pre-encoded frame (a cheap envelope; counters advance)."""

    def end_of_speech(self) -> list[Message]:
        """Messages that tell the bot the caller has finished speaking (when it does not detect it)."""
        return []

    def closing(self) -> list[Message]:
        """Messages sent before hanging up."""
        return []

    def mark_echo(self, name: str) -> Message | None:
        """The message acknowledging that the bot's audio before mark ``name`` has played (Twilio)."""
        return None

    @abstractmethod
    def malformed(self) -> Message:
        """A broken message, for fault injection."""

    @abstractmethod
    def parse(self, message: Message) -> list[ServerEvent]:
        """The events in one message from the bot."""


def _json(message: Message) -> dict[str, Any] | None:
    try:
        data = json.loads(message)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


class RawProtocol(AudioProtocol):
    """Binary PCM16 frames up; binary audio or small JSON messages down."""

    name = "raw"
    DONE_TYPES = frozenset({"done", "end", "response.done", "response_end", "audio.done"})
    AUDIO_FIELDS = ("audio", "payload", "data", "delta")

    def __init__(self, sample_rate: int = 16000) -> None:
        self.wire = WireFormat("pcm16", sample_rate)

    def encode_payload(self, frame: bytes) -> Message:
        return frame

    def audio_message(self, payload: Message) -> Message:
        return payload

    def malformed(self) -> Message:
        return '{"type": "audio", "audio": '

    def parse(self, message: Message) -> list[ServerEvent]:
        if isinstance(message, bytes):
            return [ServerEvent(AUDIO, audio_bytes=len(message))]
        data = _json(message)
        if data is None:
            return [ServerEvent(OTHER)]
        kind = str(data.get("type") or data.get("event") or "")
        if kind == "error":
            error = data.get("message") or data.get("error") or "error"
            return [ServerEvent(ERROR, name=str(error))]
        if kind in self.DONE_TYPES:
            return [ServerEvent(DONE, name=str(data.get("status", "")))]
        for field in self.AUDIO_FIELDS:
            if isinstance(data.get(field), str):
                return [ServerEvent(AUDIO, audio_bytes=b64_size(data[field]))]
        return [ServerEvent(OTHER)]


def _sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


class TwilioProtocol(AudioProtocol):
    """Twilio Media Streams, with the caller in Twilio's place: 8 kHz μ-law in base64 JSON events."""

    name = "twilio"
    wire = WireFormat("mulaw", 8000)

    def __init__(self, frame_ms: float = 20.0) -> None:
        self.frame_ms = frame_ms
        self.stream_sid, self.call_sid, self.account_sid = _sid("MZ"), _sid("CA"), _sid("AC")
        self.sequence = 0
        self.chunk = 0
        self.timestamp_ms = 0.0
        self._media_prefix = '{"event":"media","sequenceNumber":"'
        self._media_suffix = '"},"streamSid":"' + self.stream_sid + '"}'

    def _next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def opening(self) -> list[Message]:
        connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        start = {
            "event": "start",
            "sequenceNumber": str(self._next_sequence()),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": {},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": self.stream_sid,
        }
        return [json.dumps(connected), json.dumps(start)]

    def audio_message(self, payload: Message) -> Message:
        self.chunk += 1
        timestamp = int(self.timestamp_ms)
        self.timestamp_ms += self.frame_ms
        return (
            f'{self._media_prefix}{self._next_sequence()}","media":{{"track":"inbound","chunk":"{self.chunk}",'
            f'"timestamp":"{timestamp}","payload":"{payload!s}{self._media_suffix}'
        )

    def closing(self) -> list[Message]:
        stop = {
            "event": "stop",
            "sequenceNumber": str(self._next_sequence()),
            "streamSid": self.stream_sid,
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
        }
        return [json.dumps(stop)]

    def mark_echo(self, name: str) -> Message | None:
        mark = {
            "event": "mark",
            "sequenceNumber": str(self._next_sequence()),
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        }
        return json.dumps(mark)

    def malformed(self) -> Message:
        return '{"event": "media", "media": {"payload": '

    def parse(self, message: Message) -> list[ServerEvent]:
        data = _json(message)
        if data is None:
            return [ServerEvent(OTHER)]
        event = data.get("event")
        if event == "media":
            payload = (data.get("media") or {}).get("payload")
            return [ServerEvent(AUDIO, audio_bytes=b64_size(payload) if isinstance(payload, str) else 0)]
        if event == "mark":
            return [ServerEvent(MARK, name=str((data.get("mark") or {}).get("name", "")))]
        if event == "clear":
            return [ServerEvent(CLEAR)]
        return [ServerEvent(OTHER)]


REALTIME_APIS = ("ga", "beta")

REALTIME_AUDIO_DELTAS = frozenset({"response.output_audio.delta", "response.audio.delta"})
"""The GA and the beta name of the event that carries response audio."""


class OpenAIRealtimeProtocol(AudioProtocol):
    """OpenAI Realtime over WebSocket: PCM16 at 24 kHz in ``input_audio_buffer.append`` events.

    With ``server_vad`` off (the default) the caller commits its audio and asks for a response itself;
    with it on, the server detects the end of speech and answers on its own.
    """

    name = "openai-realtime"
    wire = WireFormat("pcm16", 24000)

    def __init__(self, api: str = "ga", server_vad: bool = False) -> None:
        if api not in REALTIME_APIS:
            raise ValueError(f"unknown Realtime API version {api!r}")
        self.api = api
        self.server_vad = server_vad

    @property
    def awaits_ready(self) -> bool:
        return True

    def session(self) -> dict[str, Any]:
        """The session.update event: audio formats and turn detection, in the GA or beta shape."""
        turn_detection = {"type": "server_vad"} if self.server_vad else None
        if self.api == "beta":
            session: dict[str, Any] = {
                "modalities": ["audio", "text"],
                "input_audio_format": "pcm16",
                "output_audio_format": "pcm16",
                "turn_detection": turn_detection,
            }
        else:
            pcm = {"type": "audio/pcm", "rate": 24000}
            session = {
                "type": "realtime",
                "output_modalities": ["audio"],
                "audio": {
                    "input": {"format": pcm, "turn_detection": turn_detection},
                    "output": {"format": pcm},
                },
            }
        return {"type": "session.update", "session": session}

    def opening(self) -> list[Message]:
        return [json.dumps(self.session())]

    def audio_message(self, payload: Message) -> Message:
        return f'{{"type":"input_audio_buffer.append","audio":"{payload!s}"}}'

    def end_of_speech(self) -> list[Message]:
        if self.server_vad:
            return []
        return ['{"type":"input_audio_buffer.commit"}', '{"type":"response.create"}']

    def malformed(self) -> Message:
        return '{"type": "input_audio_buffer.append", "audio": '

    def parse(self, message: Message) -> list[ServerEvent]:
        data = _json(message)
        if data is None:
            return [ServerEvent(OTHER)]
        kind = data.get("type")
        if kind in REALTIME_AUDIO_DELTAS:
            delta = data.get("delta")
            return [ServerEvent(AUDIO, audio_bytes=b64_size(delta) if isinstance(delta, str) else 0)]
        if kind == "response.done":
            response = data.get("response") or {}
            status = str(response.get("status", "completed"))
            if status == "failed":
                details = response.get("status_details") or {}
                return [ServerEvent(ERROR, name=f"response failed: {details.get('error') or details or 'no details'}")]
            return [ServerEvent(DONE, name=status)]
        if kind == "session.updated":
            return [ServerEvent(READY)]
        if kind in ("output_audio_buffer.cleared", "response.cancelled"):  # the bot stopped speaking (barge-in)
            return [ServerEvent(CLEAR)]
        if kind == "error":
            error = data.get("error")
            text = (error.get("message") or error.get("code")) if isinstance(error, dict) else error
            return [ServerEvent(ERROR, name=str(text or "error"))]
        return [ServerEvent(OTHER)]


PROTOCOLS = ("raw", "twilio", "openai-realtime")
"""The --audio-protocol presets."""


def make_protocol(
    name: str, sample_rate: int = 16000, frame_ms: float = 20.0, api: str = "ga", server_vad: bool = False
) -> AudioProtocol:
    """A fresh preset for one call (Twilio's counters and ids are per call)."""
    if name == "raw":
        return RawProtocol(sample_rate)
    if name == "twilio":
        return TwilioProtocol(frame_ms)
    if name == "openai-realtime":
        return OpenAIRealtimeProtocol(api, server_vad)
    raise ValueError(f"unknown audio protocol {name!r}")


def prepare_utterance(samples: np.ndarray, rate: int, protocol: AudioProtocol, frame_bytes: int) -> Utterance:
    """Resample, encode and cut the caller's audio into the protocol's frames, ready to send."""
    wire = protocol.wire
    pcm = resample(samples, rate, wire.rate)
    frames = split_frames(wire.encode(pcm), frame_bytes, wire.silence_byte)
    peaks = frame_peaks(pcm, frame_bytes // wire.sample_bytes)
    return Utterance(
        payloads=tuple(protocol.encode_payload(frame) for frame in frames),
        silence=protocol.encode_payload(bytes([wire.silence_byte]) * frame_bytes),
        frame_ms=wire.duration_ms(frame_bytes),
        last_voiced=last_voiced_frame(peaks),
    )
