"""One simulated phone call over a WebSocket, paced in real time: the network half of AudioStreamUser.

The caller connects, says its utterance frame by frame on an absolute schedule (frame n is due at
``t0 + n * interval``, from ``time.perf_counter()``), then stops or keeps the line open with silence
while it listens, and hangs up after its turns. A receive greenlet reads the bot: it times the first
response audio, plays the audio in real time (so Twilio marks are echoed when due) and notices the end
of each response. Everything measured lands in a CallRecord (users/audio/audio_metrics.py).

Frames are encoded before calls start (users.audio.audio_protocols.prepare_utterance); each message's small
envelope and its WebSocket framing are built while waiting for the previous frame's deadline, so at the
deadline only the socket write remains. Send lateness (actual - scheduled) is kept for every frame.
websocket-client opens the connection; frames are then written and read with users/ws/ws_frames.py,
which reads every frame that has arrived in one go.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import gevent
import websocket
from gevent.event import Event

from core.tls import websocket_sslopt
from users.audio.audio_metrics import CallRecord, Playback, TurnRecord
from users.audio.audio_protocols import AUDIO, CLEAR, DONE, ERROR, MARK, READY, AudioProtocol, Message, Utterance
from users.audio.barge_in import BargeInCalls
from users.audio.call_faults import InjectedFaults
from users.audio.call_plan import SILENCE, CallPlan
from users.common.arrival_clock import read, stamped
from users.common.http_failures import connection_failure, status_failure
from users.ws.ws_connection import unlinked
from users.ws.ws_failures import is_redirect_loop
from users.ws.ws_frames import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    FrameError,
    FrameReader,
    MessageTooLong,
    client_frame,
    close_code,
    close_frame,
)
from users.ws.ws_limits import PING_FLOOD, REDIRECT_LOOP, PingMeter

SOCKET_TIMEOUT_S = 30.0
"""A send blocked this long (the bot stopped reading) fails the call."""

RECEIVE_BYTES = 256 * 1024
"""The most one socket read takes: whatever frames have arrived, up to this."""

FRAMES_PER_TURN = 64
"""The most frames the receiver parses before it yields (a bot's 20 ms frames come one or two at a time)."""

HANGUP_TIMEOUT_S = 1.0
"""How long hanging up waits for the bot's close frame."""


class CallFailed(Exception):
    """A call that went wrong; the message is its failure name."""


class AudioCall(InjectedFaults, BargeInCalls):
    """One call: ``run()`` places it and returns its CallRecord; ``hang_up()`` ends it from outside."""

    def __init__(
        self,
        plan: CallPlan,
        protocol: AudioProtocol,
        utterance: Utterance,
        record: CallRecord,
        fault: str | None = None,
        on_connect: Callable[[CallRecord, str | None], None] | None = None,
        on_turn: Callable[[TurnRecord], None] | None = None,
    ) -> None:
        self.plan = plan
        self.protocol = protocol
        self.utterance = utterance
        self.record = record
        self.fault = fault
        self.on_connect = on_connect
        self.on_turn = on_turn
        self.ws: websocket.WebSocket | None = None
        self.receiver: gevent.Greenlet | None = None
        self.playback = Playback()
        self.turn: TurnRecord | None = None
        self.changed = Event()
        """Set by the receiver when something the caller waits for happened."""
        self.ready = False
        self.closed = False
        self.closed_by: str | None = None
        """How the connection ended when the caller did not end it: "closed 1007", "connection reset" …"""
        self.closed_at: float | None = None
        self.server_error: str | None = None
        self.hanging_up = False
        self.pending_marks: dict[str, gevent.Greenlet] = {}
        self.t0 = 0.0
        self.frame_number = 0
        self.fault_at: float | None = None
        """When the injected fault happened."""

    # -- the call ---------------------------------------------------------------------------------

    def run(self) -> CallRecord:
        """Place the call; failures end up in ``record.error``, injected faults in ``record.fault``."""
        record = self.record
        started = time.perf_counter()
        try:
            self._connect()
            record.fault = self.fault  # a call that never connected injected nothing
            self._send_now(self.protocol.opening())
            if self.protocol.awaits_ready:
                self._wait_ready()
            self.t0 = time.perf_counter()
            for number in range(self.plan.turns):
                turn = TurnRecord()
                record.turns.append(turn)
                self.turn = turn
                if not self._speak(turn, fault_at=len(self.utterance.payloads) // 2 if number == 0 else None):
                    break  # an injected fault ended the call
                self._send_now(self.protocol.end_of_speech())
                self._listen(turn)
                if self.on_turn is not None:
                    self.on_turn(turn)
            else:
                self._send_now(self.protocol.closing())
                if self.fault == "malformed" and record.fault_reaction is None:
                    record.fault_reaction = "carried on"
        except CallFailed as failure:
            self._fail(str(failure))
        except (OSError, websocket.WebSocketException) as error:
            self._fail(self.closed_by or connection_failure(error))
        finally:
            record.duration_ms = (time.perf_counter() - started) * 1000
            self.hang_up()
        return record

    def _fail(self, name: str) -> None:
        if self.record.fault is not None:
            # The call misbehaved on purpose; whatever the bot did about it is its reaction, not a failure.
            self.record.fault_reaction = self.record.fault_reaction or name
        else:
            self.record.error = name

    def _connect(self) -> None:
        record = self.record
        start = time.perf_counter()
        try:
            ws = websocket.WebSocket(sslopt=websocket_sslopt(self.plan.insecure), skip_utf8_validation=True)
            ws.connect(self.plan.url, timeout=self.plan.connect_timeout_s, header=list(self.plan.headers))
        except websocket.WebSocketBadStatusException as error:
            status = status_failure(error.status_code) or f"HTTP {error.status_code}"
            self._connect_failed(f"handshake {status}", start)  # named as the other WebSocket users name it
        except (OSError, websocket.WebSocketException) as error:
            self._connect_failed(REDIRECT_LOOP if is_redirect_loop(error) else connection_failure(error), start)
        record.connect_ms = (time.perf_counter() - start) * 1000
        ws.settimeout(SOCKET_TIMEOUT_S)
        self.ws = unlinked(ws)
        if self.on_connect is not None:
            self.on_connect(record, None)
        self.receiver = gevent.spawn(self._receive)

    def _connect_failed(self, name: str, start: float) -> None:
        self.record.connect_ms = (time.perf_counter() - start) * 1000  # a failed CONNECT row has its time too
        self.record.connect_failed = True
        self.record.error = name
        if self.on_connect is not None:
            self.on_connect(self.record, name)
        raise CallFailed(name)

    def _wait_ready(self) -> None:
        deadline = time.perf_counter() + self.plan.response_timeout_s
        while not self.ready:
            self._check_line()
            if not self.changed.wait(max(0.0, deadline - time.perf_counter())):
                raise CallFailed("session ready timeout")  # a stable name: the limit is --response-timeout
            self.changed.clear()

    def _speak(self, turn: TurnRecord, fault_at: int | None) -> bool:
        """Say the utterance in real time; False when an injected fault ended the call."""
        if self.plan.end_of_speech != SILENCE:
            self.t0 = time.perf_counter() - self.frame_number * self.plan.interval_s  # the line was quiet
        utterance, protocol = self.utterance, self.protocol
        sent_at = time.perf_counter()
        for index, payload in enumerate(utterance.payloads):
            if index == fault_at and self.fault is not None and self._inject_fault():
                return False
            sent_at = self._send_frame(client_frame(protocol.audio_message(payload)))
            self._spoke(payload, sent_at)  # the first frame with voice may start speaking over an answer
            if index == utterance.last_voiced:
                turn.speech_end_at = sent_at
            self._check_line()
        if turn.speech_end_at is None:
            turn.speech_end_at = sent_at  # nothing loud enough to count as speech: the utterance's end
        return True

    def _listen(self, turn: TurnRecord) -> None:
        """Wait for the response to start and to end, keeping the line open with silence if asked."""
        assert turn.speech_end_at is not None
        plan = self.plan
        first_audio_due = turn.speech_end_at + plan.first_audio_wait_s
        silence = self.utterance.silence
        while True:
            self._check_line()
            now = time.perf_counter()
            if self._interrupts(turn, now):  # the caller speaks over the answer: its next turn starts now
                return
            if turn.first_audio_at is None:
                if now >= first_audio_due:
                    turn.finished_at = now  # the caller gave up waiting: its silence ends here
                    raise CallFailed(plan.gave_up_as)  # a stable name: the limit is --patience or --response-timeout
                wake = first_audio_due
            else:
                played = self.playback.end or now  # when the answer so far has finished playing
                ends = played if turn.done else max(played, turn.last_audio_at or now) + plan.response_gap_s
                if now >= ends:
                    turn.finished_at = now
                    return
                wake = ends
            if plan.end_of_speech == SILENCE:
                self._send_frame(client_frame(self.protocol.audio_message(silence)))
            else:
                self.changed.wait(max(0.0, wake - now))
                self.changed.clear()

    def _send_frame(self, frame: bytes) -> float:
        """Send a prepared frame at its scheduled time; returns when it was written."""
        deadline = self.t0 + self.frame_number * self.plan.interval_s
        self.frame_number += 1
        gevent.sleep(max(0.0, deadline - time.perf_counter()))
        start = time.perf_counter()
        self._write(frame)
        end = time.perf_counter()
        self.record.sent(len(frame), (start - deadline) * 1000, self.utterance.frame_ms)
        return end

    def _send_now(self, messages: list[Message]) -> None:
        for message in messages:
            self._write(client_frame(message))

    def _write(self, frame: bytes) -> None:
        ws = self.ws
        if ws is None or ws.sock is None or self.closed:
            raise CallFailed(self.closed_by or "connection closed early")
        with ws.lock:  # a mark echo may write from the receiver: frames must not interleave
            sent = ws.sock.send(frame)
            if sent < len(frame):  # the bot is not reading fast enough: wait for room, cooperatively
                ws.sock.sendall(frame[sent:])

    def _check_line(self) -> None:
        """Raise when the bot hung up or reported an error."""
        if self.server_error is not None:
            raise CallFailed(f"server error: {self.server_error}")
        if self.closed and not self.hanging_up:
            raise CallFailed(self.closed_by or "connection closed early")

    # -- what the bot says ------------------------------------------------------------------------

    def _receive(self) -> None:
        """Read the bot: every frame that has arrived at once, each message timed as it came in.

        It yields after each read, and after every FRAMES_PER_TURN frames of one, so a bot that sends without
        pause cannot keep the caller's own greenlets (and every other user's) from running; a message over
        --ws-max-message-mb or a ping flood ends the call.
        """
        ws, parse, record, limits = self.ws, self.protocol.parse, self.record, self.plan.limits
        assert ws is not None
        sock, reader, pings = stamped(ws.sock), FrameReader(limits.max_message_bytes), PingMeter(limits.ws_max_pings)
        try:
            data, now = b"", time.perf_counter()
            while True:
                if not reader.backlog:  # else: frames of the last read are still to be parsed, stamped as it was
                    try:
                        data, now = read(sock, RECEIVE_BYTES)  # timed at arrival, however busy the loop
                    except TimeoutError:
                        continue  # a quiet bot is fine; the caller's own timers decide
                    if not data:
                        self._closed("connection closed early", now)
                        return
                for opcode, payload in reader.feed(data, FRAMES_PER_TURN):
                    if opcode == CLOSE:
                        code = close_code(payload)
                        with contextlib.suppress(OSError, CallFailed):
                            self._write(close_frame(code or 1000))  # the closing handshake's answer
                        self._closed(f"closed {code}" if code else "closed by the server", now)
                        return
                    if opcode == PING:
                        if pings.flooded(now):
                            raise CallFailed(PING_FLOOD)
                        self._write(client_frame(payload, PONG))
                        continue
                    if opcode == PONG:
                        continue
                    record.frames_received += 1
                    record.bytes_received += len(payload)
                    message = payload if opcode == BINARY else payload.decode("utf-8", "replace")
                    for event in parse(message):
                        self._on_event(event.kind, event.audio_bytes, event.name, now)
                data = b""
                gevent.sleep(0)
        except MessageTooLong:
            self._closed(limits.over_cap, time.perf_counter())
        except FrameError:
            self._closed("protocol error", time.perf_counter())
        except (OSError, CallFailed) as error:
            self._closed(connection_failure(error) if isinstance(error, OSError) else str(error), time.perf_counter())

    def _closed(self, how: str, now: float) -> None:
        if not self.hanging_up:
            self.closed_by = how
            self._reacted(f"hung up ({how})", now)
        self.closed, self.closed_at = True, now
        self.changed.set()

    def _on_event(self, kind: str, audio_bytes: int, name: str, now: float) -> None:
        self._heard(kind, audio_bytes, name, now)
        turn = self.turn
        if kind == AUDIO:
            duration_ms = self.protocol.wire.duration_ms(audio_bytes)
            listening = turn is not None and turn.speech_end_at is not None and turn.finished_at is None
            self.playback.add(now, duration_ms / 1000, continuing=listening and turn.first_audio_at is not None)
            if listening:
                first = turn.first_audio_at is None
                turn.add_audio(now, duration_ms)
                if first:
                    self.changed.set()
        elif kind == DONE:
            if turn is not None and turn.first_audio_at is not None:
                turn.done = True
                self.changed.set()
        elif kind == MARK:
            self._schedule_echo(name, now)
        elif kind == CLEAR:
            self.playback.clear(now)
            for mark, echo in list(self.pending_marks.items()):
                echo.kill(block=False)
                self._echo(mark, now)
        elif kind == ERROR:
            if self.fault == "malformed" and self.fault_at is not None:
                self._reacted("answered with an error", now)
            else:
                self.server_error = name
                self.changed.set()
        elif kind == READY:
            self.ready = True
            self.changed.set()

    def _schedule_echo(self, name: str, arrived: float) -> None:
        due = self.playback.done_at(arrived)
        if due <= time.perf_counter():
            self._echo(name, arrived)
        else:
            self.pending_marks[name] = gevent.spawn_later(due - time.perf_counter(), self._echo, name, arrived)

    def _echo(self, name: str, arrived: float) -> None:
        self.pending_marks.pop(name, None)
        message = self.protocol.mark_echo(name)
        if message is None or self.closed:
            return
        try:
            self._write(client_frame(message))
        except (OSError, websocket.WebSocketException, CallFailed):
            return
        self.record.marks_ms.append((time.perf_counter() - arrived) * 1000)

    # -- the end ----------------------------------------------------------------------------------

    def hang_up(self) -> None:
        """End the call: stop pending echoes, say goodbye (close frame, and the bot's answer), close the socket.

        Waiting for the bot's close frame lets the receiver read everything the bot still sent, so the
        socket closes cleanly; closed with unread data, it would reset, and the bot would see a drop.
        """
        self.hanging_up = True
        for echo in self.pending_marks.values():
            echo.kill(block=False)
        self.pending_marks.clear()
        ws = self.ws
        if ws is not None and ws.sock is not None and not self.closed:
            try:
                with ws.lock:
                    ws.sock.send(close_frame())
            except OSError:
                pass
            else:
                deadline = time.perf_counter() + HANGUP_TIMEOUT_S
                while not self.closed and self.receiver is not None and time.perf_counter() < deadline:
                    self.changed.wait(deadline - time.perf_counter())
                    self.changed.clear()
        self.ws = None
        if self.receiver is not None and self.receiver is not gevent.getcurrent():
            self.receiver.kill(block=False)
        self.receiver = None
        if ws is not None:
            ws.shutdown()
        self.closed = True
