"""WebSocketChatUser: a person chatting with a bot that answers over one WebSocket.

Rows in Locust's stats: ``WS connect`` (the opening handshake), ``WSR ws:<category>`` (prompt sent →
whole reply, where failures are counted), ``TTFT ws:<category>`` for streamed replies, and
``WS connection`` for a connection lost while nothing was in flight. Every failure carries one of
three classes (client, server, unexpected; see users/ws/ws_failures.py) that the WebSocket report counts
apart. A streamed reply's timings travel with its WSR event as a StreamRecord, so the LLM metrics
(TTFT, ITL, TPOT) and requests.csv cover it like the HTTP streaming user.

Wire format, every field name configurable: the user sends ``{"message": ..., "id": ...}`` (plus
``--ws-extra``); the server answers with ``{"answer": ...}`` (whole) or ``{"delta": ...}`` frames
ended by ``{"done": true}`` (streamed), or ``{"error": ...}``. A reply is matched to its prompt by the
id when the server echoes it, else it belongs to the oldest prompt in flight. A reply that is not a JSON
object fails that prompt (``reply is not JSON``) unless --ws-plain-replies takes it as a whole answer in plain
text. What the server may send is bounded (users/ws/ws_limits.py): a message over --ws-max-message-mb
(``answer over 16 MB``) or more than --ws-max-pings pings a second (``ping flood``) drops the connection.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

import gevent
from gevent.lock import BoundedSemaphore
from locust import task

from core.errors import InputError
from core.options import require_positive
from core.settings import Settings, setting
from users.common import records
from users.common.chat_base import ChatUser, chat_setup
from users.common.in_flight import record_cut_short
from users.common.probe import judged, run_probe
from users.llm.stream_metrics import StreamRecord
from users.ws.handshake import HandshakeSettings, signed_handshake
from users.ws.replies import UNREADABLE, PendingReply, ReplyBook, WsFieldSettings, read_frame, ws_fields
from users.ws.ws_connection import WebSocketConnection, websocket_url
from users.ws.ws_failures import SERVER, UNEXPECTED, WebSocketFailure
from users.ws.ws_limits import WsLimitSettings
from users.ws.ws_metrics import count_connections

CLEAN_CLOSE_PREFIX = "closed by the server"
"""A clean close (1000, 1001) with nothing in flight is not a failure: the user reconnects."""


@dataclass(frozen=True)
class WebSocketChatSettings(Settings):
    """WebSocketChatUser's own options (the handshake's and the protocol's are in handshake.py, replies.py)."""

    ws_path: str = setting("/ws/chat", "Path (or full ws:// URL) of the chat WebSocket", web_ui=True)
    queue_size: int = setting(1, "Prompts kept in flight per connection")
    reply_timeout: float = setting(60.0, "Seconds a reply may take")

    def check(self) -> None:
        if self.queue_size < 1:
            raise InputError("--queue-size: must be 1 or more")
        require_positive(self.reply_timeout, "--reply-timeout")


WS_SETTINGS = (WebSocketChatSettings, HandshakeSettings, WsFieldSettings, WsLimitSettings)
"""The WebSocket options, registered together here (PlenaryUser shares the handshake's, every WebSocket user
the limits')."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the WebSocket options (shared with PlenaryUser) and WebSocketChatUser's own."""
    for settings in WS_SETTINGS:
        settings.add_arguments(parser)


def check_options(options: Any) -> None:
    """Raise InputError for a bad WebSocket option."""
    for settings in WS_SETTINGS:
        settings.read(options)


_request_numbers = itertools.count(1)


class WebSocketChatUser(ChatUser):
    """Sends prompts over one WebSocket and times each reply, keeping up to --queue-size in flight.

    The connection opens when the user starts and again after it is lost; a prompt fails when the
    server answers with an error, closes the connection, or sends nothing within --reply-timeout.
    """

    ws_path: str
    """Path or full URL of the chat WebSocket (--ws-path)."""

    queue_size: int
    """Prompts in flight per connection (--queue-size); 1 waits for each reply before thinking."""

    reply_timeout_s: float
    """Seconds a reply may take (--reply-timeout)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        own = WebSocketChatSettings.read(options)
        self.ws_path, self.queue_size, self.reply_timeout_s = own.ws_path, own.queue_size, own.reply_timeout
        self.fields = ws_fields(options)
        self.limits = WsLimitSettings.read(options)
        self.connection: WebSocketConnection | None = None
        self.book = ReplyBook()
        self.slots = BoundedSemaphore(self.queue_size)

    @classmethod
    def probe(cls, environment: Any) -> str | None:
        """Connect and ask one question before the load, counted nowhere (users/common/probe.py)."""

        def ask_and_wait(user: WebSocketChatUser) -> None:
            user.ask()  # connects first
            with gevent.Timeout(user.reply_timeout_s, False):
                while len(user.book):  # with --queue-size above 1, ask() does not wait for the reply
                    gevent.sleep(0.01)

        accounts = len(chat_setup(environment.parsed_options).accounts)
        path = WebSocketChatSettings.read(environment.parsed_options).ws_path
        return judged(run_probe(cls, environment, ask_and_wait), cls.__name__, accounts, path=f"WebSocket {path}")

    def on_start(self) -> None:
        super().on_start()
        self.connect()

    def on_stop(self) -> None:
        connection, self.connection = self.connection, None
        now = time.perf_counter()
        for reply in self.book.take_all():  # the test is over: prompts still in flight are cut short, not failures
            self._release(reply)
            elapsed_ms = (now - reply.start) * 1000
            record_cut_short(self.environment, "WSR", reply.name, reply.record.started_at, elapsed_ms)
        if connection is not None:
            connection.close()

    @task
    def ask(self) -> None:
        """Send one prompt; with a full queue, wait until a reply frees a place before thinking."""
        self.begin_exchange()
        if self.connection is None and not self.connect():
            return
        self.slots.acquire()
        connection = self.connection
        if connection is None:  # lost while we waited for a place in the queue: reconnect next time
            self.slots.release()
            return
        prompt = self.settings.prompts.pick(self.rng)
        request_id = f"{self.user_number}-{next(_request_numbers)}"
        message = {**self.fields.extra, self.fields.prompt: prompt.text}
        if self.fields.request_id:
            message[self.fields.request_id] = request_id
        name = f"ws:{prompt.category}"
        record = StreamRecord(name=name, started_at=time.time(), user=self.user_number, request_id=request_id)
        reply = PendingReply(request_id, name, time.perf_counter() - self.request_event.lateness_ms / 1000, record)
        reply.timer = gevent.spawn_later(self.reply_timeout_s, self._time_out, reply)
        self.book.add(reply)
        try:
            connection.send(json.dumps(message))
        except WebSocketFailure as failure:
            self._finish(reply, time.perf_counter(), failure)
            self.connection_lost(connection, failure)
            return
        self.slots.wait()

    def connect(self) -> bool:
        """Open the WebSocket and start its receive loop; fires ``WS connect``. False when it failed."""
        signed = signed_handshake(self.environment.parsed_options, self.auth)
        if signed is None:
            return False
        query, handshake = signed
        connection = WebSocketConnection(self.insecure, count_connections(self.environment), self.limits)
        started_at, start = time.time(), time.perf_counter()
        try:
            elapsed_ms = connection.connect(
                websocket_url(self.host, self.ws_path, query), handshake, self.settings.request_timeout_s
            )
        except WebSocketFailure as failure:
            self._fire("WS", "connect", (time.perf_counter() - start) * 1000, failure, started_at)
            if self.auth.can_refresh and failure.args[0] == "handshake HTTP 401 Unauthorized":
                self.auth.invalidate()
            return False
        self._fire("WS", "connect", elapsed_ms, None, started_at)
        self.connection = connection
        connection.start(self)
        return True

    def message_received(self, payload: bytes, arrived: float) -> None:
        """A message from the connection (users/ws/ws_connection.py's Listener)."""
        frame = read_frame(payload, self.fields)
        if frame.kind == "ignored":
            return
        reply = self.book.match(frame)
        if reply is None:
            return
        if frame.kind in ("delta", "reply") and frame.text:
            reply.record.chunk_times_ms.append((arrived - reply.start) * 1000)
            reply.pieces.append(frame.text)
            reply.streamed = reply.streamed or frame.kind == "delta"
        if frame.kind == UNREADABLE:
            self._finish(reply, arrived, WebSocketFailure(frame.text, SERVER))
        elif frame.kind == "error":
            self._finish(reply, arrived, WebSocketFailure(f"error reply: {frame.text}", SERVER))
        elif frame.done:
            empty = not reply.pieces
            self._finish(reply, arrived, WebSocketFailure("empty answer", SERVER) if empty else None)

    def _time_out(self, reply: PendingReply) -> None:
        reply.timer = None
        if self.book.take(reply.request_id) is not None:
            self._settle(reply, time.perf_counter(), WebSocketFailure("reply timeout", UNEXPECTED))

    def connection_lost(self, connection: WebSocketConnection, ending: WebSocketFailure | None) -> None:
        """The connection ended: fail what was in flight, or report the loss itself (once per connection)."""
        connection.close()
        if self.connection is not connection or ending is None:
            return
        self.connection = None
        replies = self.book.take_all()
        now = time.perf_counter()
        for reply in replies:
            self._settle(reply, now, ending)
        if not replies and not str(ending).startswith(CLEAN_CLOSE_PREFIX):
            self._fire("WS", "connection", None, ending, time.time())

    def _finish(self, reply: PendingReply, arrived: float, failure: WebSocketFailure | None) -> None:
        if self.book.take(reply.request_id) is not None:
            self._settle(reply, arrived, failure)

    def _settle(self, reply: PendingReply, arrived: float, failure: WebSocketFailure | None) -> None:
        """Report one finished prompt and free its place in the queue."""
        self._release(reply)
        record = reply.record
        record.e2e_ms = (arrived - reply.start) * 1000
        record.error = str(failure) if failure else None
        if record.chunk_times_ms:
            record.ttft_ms = record.chunk_times_ms[0]
        if reply.streamed and record.ttft_ms is not None:
            self._fire("TTFT", reply.name, record.ttft_ms, None, record.started_at)
        context = {records.RECORD: record} if reply.streamed else {}
        length = len(record.chunk_times_ms) if reply.streamed else sum(map(len, reply.pieces))
        self._fire("WSR", reply.name, record.e2e_ms, failure, record.started_at, length, context)

    def _release(self, reply: PendingReply) -> None:
        if reply.timer is not None and reply.timer is not gevent.getcurrent():
            reply.timer.kill(block=False)
        reply.timer = None
        self.slots.release()

    def _fire(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        failure: WebSocketFailure | None,
        started_at: float,
        length: int = 0,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.environment.events.request.fire(
            request_type=request_type,
            name=name,
            response_time=response_time,
            response_length=length,
            exception=failure,
            context=context or {},
            start_time=started_at,
        )
