"""demobot's voice calls: ``/ws/audio`` (raw PCM16, Twilio Media Streams or OpenAI Realtime, told apart
by the caller's first message), ``/v1/realtime`` (OpenAI Realtime, ``session.created`` at once) and
``/stats/audio`` (live counters).

Every call follows the same rules, whatever its protocol (demobot/audio_presets.py speaks the wire):

- At most ``--audio-calls`` calls at once; another is refused with 503 before the WebSocket opens.
- The caller's speech ends when no frame with voice has arrived for ``--audio-endpoint-ms`` (silent
  frames and no frames at all count alike), or when a Realtime caller commits its audio.
- The reply starts ``--audio-reply-ms`` after the last frame with voice arrived (never before the end
  of speech is known) and is ``--audio-reply-len-ms`` of synthetic speech sent in 20 ms frames at
  real-time pace, ``--audio-lead-ms`` ahead (``--audio-reply-len-max-ms``: lengths drawn per reply, seeded).
  Deadlines are absolute, so a late wake-up never shifts the frames after it. Speech during a reply
  stops it ``--audio-barge-in-ms`` later (barge-in, demobot/audio_barge_in.py).
- A call that sends nothing for ``--audio-idle-timeout`` seconds while demobot is not speaking is hung up.
- The ``ws-close`` fault (``--fault``, demobot/faults.py) drops a share of calls halfway through demobot's
  first reply; ``ws-silent`` takes a share of calls and never says anything on them.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from aiohttp import WSMsgType, web

from demobot.audio_barge_in import BargeIn
from demobot.audio_config import AudioConfig
from demobot.audio_presets import Message, Preset, RealtimePreset, detect_preset
from demobot.audio_signal import FRAME_MS, reply_frames_b64
from demobot.faults import WS_FAULTS, pick_fault, reset_connection
from demobot.state import STATE
from demobot.timing_log import TimingLog

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_HEARD = 1000
"""Turns whose speech length and replies whose lateness /stats/audio lists (bounded logs, not a recording)."""
MALFORMED_CLOSE_CODE = 1007
"""Close code for a frame demobot cannot read (RFC 6455: inconsistent data)."""


@dataclass
class AudioCounters:
    """Voice-call counters for /stats/audio."""

    active: int = 0
    max_active: int = 0
    accepted: int = 0
    rejected: int = 0
    """Calls refused with 503 because --audio-calls were under way."""
    protocols: dict[str, int] = field(default_factory=dict)
    """Calls per protocol."""
    hung_up_by_caller: int = 0
    dropped: int = 0
    """Calls whose connection went away without a close frame."""
    idle_hangups: int = 0
    malformed: int = 0
    frames: int = 0
    voice_frames: int = 0
    replies: int = 0
    interrupted: int = 0
    """Replies cut short because the caller spoke (barge-in)."""
    marks_sent: int = 0
    marks_echoed: int = 0
    mark_rtt_total_ms: float = 0.0
    mark_rtt_max_ms: float = 0.0
    faults: int = 0
    """Calls an injected --fault dropped mid-reply or left unanswered."""
    speech_ms: list[float] = field(default_factory=list)
    """How long each turn of the callers' speech lasted, first to last voice frame (the first MAX_HEARD turns):
    what was said, as tests check that callers say different things."""
    reply_late_ms: list[float] = field(default_factory=list)
    """How late each reply's first frame went out after it was due (the first MAX_HEARD replies): --audio-reply-ms
    after the speech ended, or when the caller asked for it if that was later (a Realtime ``response.create``). The
    bot's own share of a caller's TTFA above --audio-reply-ms, when this machine's scheduler held it."""


@dataclass
class AudioService:
    """Voice-call settings and counters of one demobot."""

    config: AudioConfig
    counters: AudioCounters = field(default_factory=AudioCounters)
    seed: int = 0
    """Each call draws its reply lengths from a generator seeded with this and the call's number."""
    timing_log: TimingLog | None = None


AUDIO = web.AppKey("demobot_audio", AudioService)


class VoiceCall:
    """One caller on the line: hears its frames, knows when it stopped speaking, answers in real time."""

    def __init__(self, ws: web.WebSocketResponse, service: AudioService, rate: int) -> None:
        self.ws = ws
        self.config = service.config
        self.counters = service.counters
        self.rate = rate
        self.preset: Preset | None = None
        self.speaking = False
        self.last_voice_at: float | None = None
        self.speech_started_at: float | None = None
        self.committed_at: float | None = None
        self.last_activity = time.perf_counter()
        self.endpointer: asyncio.Task[None] | None = None
        self.reply_task: asyncio.Task[None] | None = None
        self.replies = 0
        self.marks: dict[str, float] = {}
        self.ended = False
        self.cut_mid_reply: Callable[[], None] | None = None
        """Set for a ``ws-close`` fault: drops the connection halfway through the reply."""
        self.barge_in = BargeIn(self, service.timing_log)
        self.rng = random.Random(service.seed * 1_000_003 + service.counters.accepted)

    # -- what the presets call --------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        if self.ended or self.ws.closed:
            return
        try:
            if isinstance(message, bytes):
                await self.ws.send_bytes(message)
            else:
                await self.ws.send_str(message)
        except ConnectionError:  # the caller went away mid-reply; the receive loop ends the call
            self.ended = True

    async def hear(self, voice: bool, now: float) -> None:
        """One frame of the caller's audio arrived at ``now``."""
        self.counters.frames += 1
        if not voice:
            return
        self.counters.voice_frames += 1
        self.last_voice_at = now
        if self.reply_task is not None:
            await self.barge_in.heard(now)
        if not self.speaking:
            self.speaking, self.speech_started_at = True, now
            for message in self.preset.speech_started():
                await self.send(message)
        if self.preset.detects_end_of_speech and self.endpointer is None:
            self.endpointer = asyncio.create_task(self._endpoint())

    def commit(self) -> None:
        """The caller says its speech is over (Realtime ``commit``): it ended with the last voice frame."""
        self._stop_endpointer()
        self.speaking = False
        self.committed_at = self.last_voice_at

    def respond(self) -> None:
        """Answer now (Realtime ``response.create``), timed from the end of the committed speech."""
        speech_end, self.committed_at = self.committed_at or self.last_voice_at, None
        self._start_reply(speech_end or time.perf_counter())

    async def interrupt(self) -> None:
        """Stop the reply under way (barge-in, ``response.cancel``)."""
        task, self.reply_task = self.reply_task, None
        if task is None:
            return
        task.cancel()
        self.counters.interrupted += 1
        for message in self.preset.reply_end(self.replies, interrupted=True):
            await self.send(message)

    def mark_sent(self, name: str) -> None:
        self.counters.marks_sent += 1
        self.marks[name] = time.perf_counter()

    def mark_echoed(self, name: str, now: float) -> None:
        sent = self.marks.pop(name, None)
        if sent is None:
            return
        rtt_ms = (now - sent) * 1000
        counters = self.counters
        counters.marks_echoed += 1
        counters.mark_rtt_total_ms += rtt_ms
        counters.mark_rtt_max_ms = max(counters.mark_rtt_max_ms, rtt_ms)

    async def malformed(self, what: str) -> None:
        """The caller sent something unreadable: hang up with 1007."""
        self.counters.malformed += 1
        await self.hang_up(f"malformed: {what}"[:120], MALFORMED_CLOSE_CODE)

    async def hang_up(self, reason: str, code: int = 1000) -> None:
        self.ended = True
        await self.ws.close(code=code, message=reason.encode())

    # -- end of speech and the reply --------------------------------------------------------------

    async def _endpoint(self) -> None:
        endpoint_s = self.config.endpoint_ms / 1000
        while (wait := self.last_voice_at + endpoint_s - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        self.endpointer = None
        self.speaking = False
        for message in self.preset.speech_stopped():
            await self.send(message)
        self._start_reply(self.last_voice_at)

    def _stop_endpointer(self) -> None:
        if self.endpointer is not None:
            self.endpointer.cancel()
            self.endpointer = None

    def _start_reply(self, speech_end: float) -> None:
        heard = self.counters.speech_ms
        if self.speech_started_at is not None and len(heard) < MAX_HEARD:
            heard.append(round((speech_end - self.speech_started_at) * 1000, 1))
        if self.reply_task is not None:
            self.reply_task.cancel()
        self.replies += 1
        self.reply_task = asyncio.create_task(self._reply(speech_end, self.replies, time.perf_counter()))

    async def _reply(self, speech_end: float, number: int, asked_at: float) -> None:
        config = self.config
        # built before the deadline, never after; a prefix of the longest reply when lengths vary
        frames = self.preset.reply(number, config.longest_reply_ms)[: config.reply_frames(self.rng)]
        due = max(speech_end + config.reply_ms / 1000, asked_at)  # a reply asked for late is due when asked
        start = max(due, time.perf_counter())
        while (wait := start - time.perf_counter()) > 0:  # the loop's timers may fire a little early
            await asyncio.sleep(wait)
        frame_s, lead_s = FRAME_MS / 1000, config.lead_ms / 1000
        for index, message in enumerate(frames):
            if self.cut_mid_reply is not None and index == len(frames) // 2:
                self.cut_mid_reply()
                return
            wait = start + max(0.0, index * frame_s - lead_s) - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            await self.send(message)
            if index == 0 and len(late := self.counters.reply_late_ms) < MAX_HEARD:
                late.append(round((time.perf_counter() - due) * 1000, 1))
        for message in self.preset.reply_end(number, interrupted=False):
            await self.send(message)
        self.counters.replies += 1
        self.reply_task = None
        self.last_activity = time.perf_counter()

    # -- the call ---------------------------------------------------------------------------------

    async def serve(self, preset: Preset | None) -> None:
        """Read the caller until it hangs up, drops, goes idle or sends something unreadable."""
        ws, counters = self.ws, self.counters
        if preset is not None:
            self._begin(preset)
            for message in preset.opening():
                await self.send(message)
        try:
            while not self.ended:
                message = await self._next_message()
                if message is None:
                    counters.idle_hangups += 1
                    await self.hang_up("idle timeout")
                    break
                now = self.last_activity = time.perf_counter()
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    if self.preset is None:
                        self._begin(detect_preset(self, message.data, self.rate))
                    if message.type == WSMsgType.TEXT:
                        await self.preset.on_text(message.data, now)
                    else:
                        await self.preset.on_binary(message.data, now)
                elif message.type == WSMsgType.CLOSE:
                    counters.hung_up_by_caller += 1
                    break
                elif message.type in (WSMsgType.CLOSED, WSMsgType.ERROR, WSMsgType.CLOSING):
                    counters.dropped += 1
                    break
        except asyncio.CancelledError:  # the connection went away (aiohttp cancels the handler)
            counters.dropped += 1
            raise
        finally:
            self.ended = True
            self._stop_endpointer()
            if self.reply_task is not None:
                self.reply_task.cancel()
            if not ws.closed:
                await ws.close()

    def _begin(self, preset: Preset) -> None:
        self.preset = preset
        protocols = self.counters.protocols
        protocols[preset.name] = protocols.get(preset.name, 0) + 1

    async def _next_message(self) -> web.WSMessage | None:
        """The caller's next message, or None once it has been idle past the timeout."""
        idle_s = self.config.idle_timeout_s
        while True:
            busy = self.reply_task is not None or self.endpointer is not None
            remaining = idle_s if busy else self.last_activity + idle_s - time.perf_counter()
            if remaining <= 0:
                return None
            try:
                return await self.ws.receive(timeout=remaining)
            except TimeoutError:
                continue  # look again: a reply may have started or ended meanwhile


async def _call(request: web.Request, preset_for: type[RealtimePreset] | None) -> web.StreamResponse:
    service = request.app[AUDIO]
    counters = service.counters
    if counters.active >= service.config.calls:
        counters.rejected += 1
        return web.Response(status=503, text="voice call capacity reached", headers={"Retry-After": "1"})
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    counters.accepted += 1
    counters.active += 1
    counters.max_active = max(counters.max_active, counters.active)
    try:
        rate = int(request.query.get("sample_rate", "16000"))
    except ValueError:
        rate = 16000
    call = VoiceCall(ws, service, rate if 4000 <= rate <= 48000 else 16000)
    state = request.app[STATE]
    fault = pick_fault(state.config.faults, "audio", WS_FAULTS, state.rng)
    counters.faults += fault is not None
    try:
        if fault == "ws-silent":
            async for _message in ws:  # listen, never answer, until the caller gives up
                pass
        else:
            if fault == "ws-close":
                call.cut_mid_reply = functools.partial(reset_connection, request)
            await call.serve(preset_for(call) if preset_for else None)
    finally:
        counters.active -= 1
    return ws


async def voice_call(request: web.Request) -> web.StreamResponse:
    """Voice call over WebSocket: raw PCM16, Twilio Media Streams or OpenAI Realtime (from the first message)."""
    return await _call(request, None)


async def realtime_call(request: web.Request) -> web.StreamResponse:
    """OpenAI Realtime voice call over WebSocket (session.created as soon as it opens)."""
    return await _call(request, RealtimePreset)


async def audio_stats(request: web.Request) -> web.Response:
    """Live voice-call counters: active, refused, replies, barge-ins, idle hang-ups, marks and their round trip."""
    service = request.app[AUDIO]
    body = asdict(service.counters)
    echoed = service.counters.marks_echoed
    body["mark_rtt_mean_ms"] = round(service.counters.mark_rtt_total_ms / echoed, 2) if echoed else None
    body["config"] = asdict(service.config)
    return web.json_response(body)


def setup(app: web.Application) -> None:
    """Register the voice routes (and synthesise the replies in each protocol's format now, not mid-call)."""
    state = app[STATE]
    config = state.config.audio
    app[AUDIO] = AudioService(config, seed=state.config.seed, timing_log=state.timing_log)
    for encoding, rate in (("pcm16", 16000), ("mulaw", 8000), ("pcm16", 24000)):
        reply_frames_b64(encoding, rate, config.longest_reply_ms)
    app.router.add_get("/ws/audio", voice_call)
    app.router.add_get("/v1/realtime", realtime_call)
    app.router.add_get("/stats/audio", audio_stats)
