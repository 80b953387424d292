"""One WebSocket connection for a simulated user: connect, send, and one receive greenlet.

Built on websocket-client (blocking calls, cooperative under gevent) with UTF-8 validation off, which
halves the client's CPU per message; the receive loop hands each text or binary message to a callback
together with the ``perf_counter()`` instant it arrived. Failures are sorted into the three classes
the WebSocket report counts apart (see ``failure_class``):

- ``client``: the server refused what we sent: a 4xx handshake, close codes 1002/1003/1007-1010 and
  4000-4999, protocol errors.
- ``server``: the server says it failed: a 5xx handshake, close codes 1011-1014, error replies.
- ``unexpected``: nobody said anything: timeouts, refused or reset connections, a close without a code.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import gevent
import websocket
from gevent.hub import Waiter

from core.tls import websocket_sslopt
from users.common.arrival_clock import read, stamped
from users.common.http_failures import connection_failure, status_failure
from users.ws.ws_frames import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    FrameError,
    FrameReader,
    MessageTooLong,
    client_frame,
    close_frame,
)
from users.ws.ws_limits import PING_FLOOD, REDIRECT_LOOP, PingMeter, WsLimitSettings

CLIENT, SERVER, UNEXPECTED = "client", "server", "unexpected"
FAILURE_CLASSES = (CLIENT, SERVER, UNEXPECTED)
"""The three failure classes, in report order."""

RECEIVER_LINGER_S = 1.0
"""How long a receive greenlet waits for the next frame before it ends; the connection then waits for data
with no greenlet at all (a parked greenlet's stack costs ~3 KB, and idle participants are many)."""

CLOSE_TIMEOUT_S = 1.0
"""How long closing waits for the server's close frame before dropping the socket."""

RECEIVE_BYTES = 65536
"""Bytes asked for per socket read (a read returns what has arrived, up to this)."""

FRAMES_PER_TURN = 16
"""Frames handled before the receive loop yields to the other greenlets."""

CLIENT_CLOSE_CODES = frozenset({1002, 1003, 1007, 1008, 1009, 1010})
SERVER_CLOSE_CODES = frozenset({1011, 1012, 1013, 1014})
CLEAN_CLOSE_CODES = frozenset({1000, 1001, 1005})
"""Normal closes (1005: a close frame without a code); a failure only when replies were still due."""


class WebSocketFailure(Exception):
    """A failed WebSocket exchange; the message is its failure name, ``kind`` one of FAILURE_CLASSES."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def failure_class(error: BaseException | None) -> str | None:
    """The failure class of a request event's exception (None for no failure)."""
    if error is None:
        return None
    return getattr(error, "kind", UNEXPECTED)


def close_failure(code: int | None, reason: str = "") -> WebSocketFailure:
    """The failure for a connection the server closed with ``code`` (None: no close frame at all)."""
    if code is None:
        return WebSocketFailure("connection dropped", UNEXPECTED)
    text = f"closed {code}" + (f" {reason}" if reason else "")
    if 4000 <= code <= 4999 or code in CLIENT_CLOSE_CODES:
        return WebSocketFailure(text, CLIENT)
    if code in SERVER_CLOSE_CODES:
        return WebSocketFailure(text, SERVER)
    if code in CLEAN_CLOSE_CODES:
        return WebSocketFailure(f"closed by the server ({code})", UNEXPECTED)
    return WebSocketFailure(text, UNEXPECTED)


def error_failure(error: BaseException) -> WebSocketFailure:
    """The failure for an exception raised while connecting, sending or receiving."""
    if isinstance(error, WebSocketFailure):
        return error
    if isinstance(error, websocket.WebSocketBadStatusException):
        status = int(error.status_code)
        return WebSocketFailure(
            f"handshake {status_failure(status) or f'HTTP {status}'}", CLIENT if status < 500 else SERVER
        )
    if isinstance(error, websocket.WebSocketProtocolException | websocket.WebSocketPayloadException):
        return WebSocketFailure("protocol error", CLIENT)
    if isinstance(error, websocket.WebSocketTimeoutException):
        return WebSocketFailure("timeout", UNEXPECTED)
    if is_redirect_loop(error):
        return WebSocketFailure(REDIRECT_LOOP, UNEXPECTED)
    if isinstance(error, websocket.WebSocketConnectionClosedException):
        return WebSocketFailure("connection dropped", UNEXPECTED)
    if isinstance(error, websocket.WebSocketAddressException):
        return WebSocketFailure("unknown host", UNEXPECTED)
    return WebSocketFailure(connection_failure(error), UNEXPECTED)


def is_redirect_loop(error: BaseException) -> bool:
    """Whether a handshake failed because the server kept redirecting (websocket-client follows three 3xx)."""
    return isinstance(error, websocket.WebSocketException) and str(error).startswith("Redirect limit")


def websocket_url(host: str, path: str, query: dict[str, str] | None = None) -> str:
    """The ws(s):// URL of ``path`` on ``host``, which may be given as http(s) or ws(s)."""
    if path.startswith(("ws://", "wss://")):
        base = urlsplit(path)
    else:
        parts = urlsplit(host)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme or "ws")
        joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
        base = urlsplit(urlunsplit((scheme, parts.netloc, joined, "", "")))
        if "?" in path:
            base = base._replace(query=path.split("?", 1)[1])
    if query:
        extra = urlencode(query)
        base = base._replace(query=f"{base.query}&{extra}" if base.query else extra)
    return urlunsplit(base)


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the opening handshake sends besides the URL."""

    headers: tuple[str, ...] = ()
    """Extra header lines, ``Name: value``."""
    origin: str | None = None
    subprotocol: str | None = None


MessageHandler = Callable[[bytes, float], None]
"""Called with each message's payload and the ``perf_counter()`` instant it arrived."""

CloseHandler = Callable[["WebSocketConnection", WebSocketFailure | None], None]
"""Called once when the connection ends, with the connection and None when we closed it, else why it ended
(a bound method serves every connection of a user: no closure per connection)."""


class WebSocketConnection:
    """An open WebSocket and the greenlet that reads it while frames come.

    ``connect`` opens it (websocket-client does the HTTP upgrade) and returns the connect time in ms; after that
    frames are written and read on the bare socket with users/ws/ws_frames.py (one read takes every frame that has
    arrived; websocket-client's own objects, ~1.5 KB per connection, are let go). ``start`` starts receiving;
    ``send`` writes a text message from any greenlet; ``close`` stops receiving and closes the socket. A connection
    with nothing to read holds no greenlet: the event loop watches its socket and starts a receive greenlet when
    data comes, which ends after RECEIVER_LINGER_S without a frame.
    """

    __slots__ = (
        "_insecure",
        "_limits",
        "_on_close",
        "_on_message",
        "_on_open_change",
        "_open",
        "_readable",
        "_reader",
        "_receiver",
        "_send_lock",
        "closed",
        "sock",
    )

    def __init__(
        self,
        insecure: bool = False,
        on_open_change: Callable[[int], None] | None = None,
        limits: WsLimitSettings | None = None,
    ) -> None:
        """``on_open_change(+1)`` is called when the connection opens and ``(-1)`` when it closes (the WebSocket
        report plots latency against the connections open); ``limits`` bound what the server may send."""
        self._limits = limits or WsLimitSettings()
        self._insecure = insecure
        self.sock: Any = None
        self._send_lock: Any = None
        """Sends come from the user's greenlet and the receive loop's (pongs, the close): one frame at a time."""
        self._receiver: gevent.Greenlet | None = None
        self._readable: Any = None
        """The event loop's watch on the socket (libev io watcher), made by ``start``."""
        self._reader: FrameReader | None = None
        """A part of a frame kept between receive greenlets (None when nothing is buffered)."""
        self._on_message: MessageHandler | None = None
        self._on_close: CloseHandler | None = None
        self.closed = False
        self._open = False
        self._on_open_change = on_open_change

    def connect(self, url: str, handshake: Handshake, timeout_s: float) -> float:
        """Open the connection; returns the time the handshake took (ms). Raises WebSocketFailure."""
        options: dict[str, Any] = {"timeout": timeout_s}
        if handshake.headers:
            options["header"] = list(handshake.headers)
        if handshake.origin:
            options["origin"] = handshake.origin
        if handshake.subprotocol:
            options["subprotocols"] = [handshake.subprotocol]
        ws = websocket.WebSocket(sslopt=websocket_sslopt(self._insecure), skip_utf8_validation=True)
        start = time.perf_counter()
        try:
            ws.connect(url, **options)
        except Exception as error:  # every way a handshake can fail becomes a named failure
            self.closed = True
            ws.shutdown()
            raise error_failure(error) from None
        elapsed_ms = (time.perf_counter() - start) * 1000
        self.sock, self._send_lock = ws.sock, ws.lock
        self.sock.settimeout(None)  # the receive loop waits as long as it takes; replies have their own timers
        stamped(self.sock)  # a message is timed at its arrival, however busy the loop (arrival_clock)
        self._open = True
        if self._on_open_change is not None:
            self._on_open_change(1)
        return elapsed_ms

    def start(self, on_message: MessageHandler, on_close: CloseHandler) -> None:
        """Start receiving: the loop watches the socket and calls ``on_message`` for each message."""
        self._on_message, self._on_close = on_message, on_close
        self._readable = gevent.get_hub().loop.io(self.sock.fileno(), 1)
        self._watch()

    def _watch(self) -> None:
        """Wait for data with no greenlet: the loop calls ``_wake`` once the socket is readable."""
        if not self.closed:
            self._readable.start(self._wake)

    def _wake(self) -> None:
        """Data came to a watched socket (called by the event loop): start a receive greenlet."""
        self._readable.stop()
        if not self.closed and self._receiver is None:
            self._receiver = gevent.spawn(self._receive)

    def send(self, text: str) -> None:
        """Send one text message. Raises WebSocketFailure when the connection is gone."""
        if self.closed:
            raise WebSocketFailure("connection dropped", UNEXPECTED)
        try:
            self._send(client_frame(text))
        except Exception as error:
            raise error_failure(error) from None

    def _send(self, frame: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(frame)

    def close(self) -> None:
        """Stop receiving and close the connection (a clean 1000 close when it is still open)."""
        receiver, self._receiver = self._receiver, None
        if receiver is not None and receiver is not gevent.getcurrent():
            receiver.kill(block=False)
        if self._readable is not None:
            self._readable.stop()
        self._uncount()
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):  # closing a broken socket must not fail a user's stop
                self._close_handshake()
            self._shut()

    def _close_handshake(self) -> None:
        """Send a 1000 close and read until the server's close frame, for CLOSE_TIMEOUT_S at most (frames longer
        than --ws-max-message-mb are refused from their header; every read yields)."""
        self._send(close_frame(1000))
        self.sock.settimeout(CLOSE_TIMEOUT_S)
        reader = self._reader or FrameReader(self._limits.max_message_bytes)
        deadline = time.perf_counter() + CLOSE_TIMEOUT_S
        while time.perf_counter() < deadline:
            data = self.sock.recv(RECEIVE_BYTES)
            if not data or any(opcode == CLOSE for opcode, _ in reader.feed(data)):
                return
            gevent.sleep(0)

    def _receive(self) -> None:
        """Read until nothing comes for RECEIVER_LINGER_S (then go back to watching) or the connection ends.

        One read takes whatever has arrived; at most FRAMES_PER_TURN frames are handled before the loop yields to
        the other greenlets, however fast the server sends. Only TLS may hold decrypted bytes (``pending``). Reads
        take no lock: only this greenlet reads.
        """
        sock, on_message, readable = self.sock, self._on_message, self._readable
        assert on_message is not None
        hub = gevent.get_hub()
        linger = hub.loop.timer(RECEIVER_LINGER_S)
        pending = getattr(sock, "pending", None)
        reader, self._reader = self._reader or FrameReader(self._limits.max_message_bytes), None
        pings = PingMeter(self._limits.ws_max_pings)  # a second without frames ends a window anyway
        ending: WebSocketFailure | None = None
        arrived = time.perf_counter()
        try:
            while ending is None:
                data = b""
                if not reader.backlog:  # else: frames of the last read are still to be parsed, stamped as it was
                    data, arrived = read(sock, RECEIVE_BYTES)
                    if not data:
                        raise WebSocketFailure("connection dropped", UNEXPECTED)
                for opcode, payload in reader.feed(data, FRAMES_PER_TURN):
                    if opcode in (TEXT, BINARY):
                        on_message(payload, arrived)
                    elif opcode == CLOSE:
                        with contextlib.suppress(OSError):
                            self._send(close_frame(1000))  # the closing handshake's answer
                        ending = _close_frame_failure(payload)
                        break
                    elif opcode == PING:
                        if len(payload) > 125:
                            raise FrameError("ping message too long")
                        if pings.flooded(arrived):
                            ending = WebSocketFailure(PING_FLOOD, UNEXPECTED)
                            break
                        self._send(client_frame(payload, PONG))
                if ending is not None:
                    break
                if reader.backlog or (pending is not None and pending()):
                    gevent.sleep(0)
                elif not _readable_within(hub, readable, linger):
                    if reader.buffer or reader.fragments:
                        self._reader = reader
                    self._receiver = None
                    self._watch()
                    return
        except MessageTooLong:
            ending = WebSocketFailure(self._limits.over_cap, UNEXPECTED)
        except FrameError:
            ending = WebSocketFailure("protocol error", CLIENT)
        except WebSocketFailure as failure:
            ending = None if self.closed else failure
        except OSError as error:
            ending = None if self.closed else error_failure(error)
        self._finish(ending)

    def _shut(self) -> None:
        if self.sock is None:  # never opened
            return
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def _finish(self, ending: WebSocketFailure | None) -> None:
        was_closed, self.closed = self.closed, True
        self._receiver = None
        self._uncount()
        self._shut()
        if self._on_close is not None:
            self._on_close(self, None if was_closed else ending)

    def _uncount(self) -> None:
        if self._open:
            self._open = False
            if self._on_open_change is not None:
                self._on_open_change(-1)


def _readable_within(hub: Any, readable: Any, timer: Any) -> bool:
    """Wait until ``readable`` fires (True) or ``timer`` does (False); both watchers are stopped afterwards."""
    waiter = Waiter(hub)
    readable.start(waiter.switch, True)
    timer.start(waiter.switch, False)
    try:
        return waiter.get()
    finally:
        readable.stop()
        timer.stop()


def _close_frame_failure(data: bytes) -> WebSocketFailure:
    if len(data) < 2:
        return close_failure(1005)
    code = struct.unpack("!H", data[:2])[0]
    return close_failure(code, data[2:].decode("utf-8", "replace")[:60])
