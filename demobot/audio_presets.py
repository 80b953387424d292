"""The three voice protocols as demobot speaks them: what it reads from a caller and what it answers.

A preset turns each incoming message into calls on its VoiceCall (``hear`` a frame, ``commit``,
``respond``, ``mark_echoed``, ``malformed``, ``hang_up``) and builds the reply messages. The call logic
(end of speech, timing, capacity) lives in routes_audio.py and is the same for all three.

- raw: binary PCM16 frames in; binary PCM16 reply frames and a ``{"type": "done"}`` text message out.
- twilio: Twilio Media Streams with demobot as the bot: reads ``start``/``media``/``mark``/``stop``,
  answers with ``media``, a ``mark`` after each reply (timing the caller's echo), and ``clear`` on barge-in.
- openai-realtime: OpenAI Realtime events; GA names (``response.output_audio.delta``) unless the
  caller's ``session.update`` has the beta shape (then ``response.audio.delta``). Without server VAD
  the caller commits and asks for a response; with it demobot detects the end of speech itself.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from typing import TYPE_CHECKING, Any

from demobot.audio_signal import mulaw_has_voice, pcm16_has_voice, reply_frames, reply_frames_b64

if TYPE_CHECKING:
    from demobot.routes_audio import VoiceCall

Message = bytes | str


def _loads(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class RawPreset:
    """Binary PCM16 both ways (16 kHz unless the URL says ``?sample_rate=``)."""

    name = "raw"

    def __init__(self, call: VoiceCall, rate: int = 16000) -> None:
        self.call = call
        self.rate = rate

    @property
    def detects_end_of_speech(self) -> bool:
        return True

    async def on_binary(self, data: bytes, now: float) -> None:
        try:
            voice = pcm16_has_voice(data)
        except ValueError:
            await self.call.malformed("PCM16 frame with an odd number of bytes")
            return
        await self.call.hear(voice, now)

    async def on_text(self, text: str, now: float) -> None:
        data = _loads(text)
        if data is None:
            await self.call.malformed("text frame that is not a JSON object")
        elif data.get("type") in ("stop", "hangup", "end"):
            await self.call.hang_up("caller hung up")

    def opening(self) -> list[Message]:
        return []

    def reply(self, number: int, length_ms: float) -> list[Message]:
        return list(reply_frames("pcm16", self.rate, length_ms))

    def reply_end(self, number: int, interrupted: bool) -> list[Message]:
        return [json.dumps({"type": "done", "status": "cancelled" if interrupted else "completed"})]

    def speech_started(self) -> list[Message]:
        return []

    def speech_stopped(self) -> list[Message]:
        return []


class TwilioPreset:
    """Twilio Media Streams, demobot in the bot's seat: 8 kHz μ-law in base64 JSON events."""

    name = "twilio"

    def __init__(self, call: VoiceCall) -> None:
        self.call = call
        self.stream_sid = ""

    @property
    def detects_end_of_speech(self) -> bool:
        return True

    async def on_binary(self, data: bytes, now: float) -> None:
        await self.call.malformed("binary frame in a Twilio media stream")

    async def on_text(self, text: str, now: float) -> None:
        data = _loads(text)
        if data is None:
            await self.call.malformed("media stream event that is not a JSON object")
            return
        event = data.get("event")
        if event == "media":
            payload = (data.get("media") or {}).get("payload")
            try:
                audio = base64.b64decode(payload, validate=True)
            except (binascii.Error, TypeError, ValueError):
                await self.call.malformed("media payload that is not base64")
                return
            self.stream_sid = self.stream_sid or str(data.get("streamSid", ""))
            await self.call.hear(mulaw_has_voice(audio), now)
        elif event == "start":
            self.stream_sid = str((data.get("start") or {}).get("streamSid") or data.get("streamSid") or "")
        elif event == "mark":
            self.call.mark_echoed(str((data.get("mark") or {}).get("name", "")), now)
        elif event == "stop":
            await self.call.hang_up("stream stopped")

    def opening(self) -> list[Message]:
        return []

    def reply(self, number: int, length_ms: float) -> list[Message]:
        prefix = '{"event":"media","streamSid":"' + self.stream_sid + '","media":{"payload":"'
        return [prefix + payload + '"}}' for payload in reply_frames_b64("mulaw", 8000, length_ms)]

    def reply_end(self, number: int, interrupted: bool) -> list[Message]:
        if interrupted:
            return [json.dumps({"event": "clear", "streamSid": self.stream_sid})]
        name = f"reply-{number}"
        self.call.mark_sent(name)
        return [json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})]

    def speech_started(self) -> list[Message]:
        return []

    def speech_stopped(self) -> list[Message]:
        return []


class RealtimePreset:
    """OpenAI Realtime: JSON events, PCM16 at 24 kHz in base64."""

    name = "openai-realtime"

    def __init__(self, call: VoiceCall) -> None:
        self.call = call
        self.api = "ga"
        self.server_vad = False
        self.created = False
        self.ids = itertools.count(1)

    @property
    def detects_end_of_speech(self) -> bool:
        return self.server_vad

    def _event(self, kind: str, **fields: Any) -> str:
        return json.dumps({"type": kind, "event_id": f"event_{next(self.ids)}", **fields})

    def opening(self) -> list[Message]:
        self.created = True
        session = {"id": f"sess_{id(self):x}", "object": "realtime.session", "model": "demobot-realtime"}
        return [self._event("session.created", session=session)]

    async def on_binary(self, data: bytes, now: float) -> None:
        await self._error("invalid_request_error", "binary frames are not accepted; send JSON events")

    async def _error(self, kind: str, message: str) -> None:
        self.call.counters.malformed += 1
        await self.call.send(self._event("error", error={"type": kind, "code": kind, "message": message}))

    async def on_text(self, text: str, now: float) -> None:
        data = _loads(text)
        if data is None:
            await self._error("invalid_request_error", "the event is not a JSON object")
            return
        kind = data.get("type")
        if kind == "input_audio_buffer.append":
            try:
                audio = base64.b64decode(data.get("audio") or "", validate=True)
                voice = pcm16_has_voice(audio)
            except (binascii.Error, TypeError, ValueError):
                await self._error("invalid_request_error", "'audio' is not base64 PCM16")
                return
            await self.call.hear(voice, now)
        elif kind == "session.update":
            await self._update_session(data.get("session") or {})
        elif kind == "input_audio_buffer.commit":
            self.call.commit()
            await self.call.send(self._event("input_audio_buffer.committed", item_id=f"item_{next(self.ids)}"))
        elif kind == "input_audio_buffer.clear":
            self.call.commit()
            await self.call.send(self._event("input_audio_buffer.cleared"))
        elif kind == "response.create":
            await self.call.send(self._event("response.created", response={"status": "in_progress"}))
            self.call.respond()
        elif kind == "response.cancel":
            await self.call.interrupt()
        else:
            await self._error("invalid_request_error", f"unknown event type {str(kind)[:40]!r}")

    async def _update_session(self, session: dict[str, Any]) -> None:
        if not isinstance(session, dict):
            await self._error("invalid_request_error", "'session' must be an object")
            return
        self.api = "ga" if session.get("type") == "realtime" or "audio" in session else "beta"
        if self.api == "ga":
            turn_detection = ((session.get("audio") or {}).get("input") or {}).get("turn_detection")
        else:
            turn_detection = session.get("turn_detection")
        self.server_vad = bool(turn_detection)
        if not self.created:
            for message in self.opening():
                await self.call.send(message)
        await self.call.send(self._event("session.updated", session=session))

    def _name(self, ga: str, beta: str) -> str:
        return ga if self.api == "ga" else beta

    def reply(self, number: int, length_ms: float) -> list[Message]:
        head = json.dumps({"type": self._name("response.output_audio.delta", "response.audio.delta")})[:-1]
        ids = f',"response_id":"resp_{number}","item_id":"item_r{number}","output_index":0,"content_index":0'
        return [f'{head}{ids},"delta":"{delta}"}}' for delta in reply_frames_b64("pcm16", 24000, length_ms)]

    def reply_end(self, number: int, interrupted: bool) -> list[Message]:
        status = "cancelled" if interrupted else "completed"
        done_name = self._name("response.output_audio.done", "response.audio.done")
        done = self._event(done_name, response_id=f"resp_{number}")
        response = {"id": f"resp_{number}", "object": "realtime.response", "status": status}
        return [done, self._event("response.done", response=response)]

    def speech_started(self) -> list[Message]:
        return [self._event("input_audio_buffer.speech_started")] if self.server_vad else []

    def speech_stopped(self) -> list[Message]:
        if not self.server_vad:
            return []
        item = f"item_{next(self.ids)}"
        return [
            self._event("input_audio_buffer.speech_stopped", item_id=item),
            self._event("input_audio_buffer.committed", item_id=item),
            self._event("response.created", response={"status": "in_progress"}),
        ]


Preset = RawPreset | TwilioPreset | RealtimePreset


def detect_preset(call: VoiceCall, message: Message, rate: int) -> Preset:
    """The protocol a caller speaks, told from its first message."""
    if isinstance(message, bytes):
        return RawPreset(call, rate)
    data = _loads(message) or {}
    if "event" in data:
        return TwilioPreset(call)
    if str(data.get("type", "")).startswith(("session.", "input_audio_buffer.", "response.", "conversation.")):
        return RealtimePreset(call)
    return RawPreset(call, rate)
