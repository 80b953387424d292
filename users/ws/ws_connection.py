"""One WebSocket connection for a simulated user: connect, send, and receive with as little as it takes.

Built on websocket-client (blocking calls, cooperative under gevent) with UTF-8 validation off, which
halves the client's CPU per message; each text or binary message received goes to a callback together
with the ``perf_counter()`` instant it arrived. Failures are named and classed in users/ws/ws_failures.py.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import gevent
import websocket
from gevent.hub import Waiter

from core.tls import websocket_sslopt
from users.common.arrival_clock import is_plain, read, receive, stamped
from users.ws.ws_failures import CLIENT, UNEXPECTED, WebSocketFailure, close_frame_failure, error_failure
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
    whole_message,
)
from users.ws.ws_limits import PING_FLOOD, PingMeter, WsLimitSettings

RECEIVER_LINGER_S = 1.0
"""How long a receive greenlet waits for the next frame before it ends; the connection then waits for data
with no greenlet at all (a parked greenlet's stack costs ~3 KB, and idle participants are many)."""

CLOSE_TIMEOUT_S = 1.0
"""How long closing waits for the server's close frame before dropping the socket."""

RECEIVE_BYTES = 65536
"""Bytes asked for per socket read (a read returns what has arrived, up to this)."""

FRAMES_PER_TURN = 16
"""Frames handled before the receive loop yields to the other greenlets."""


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


def unlinked(ws: websocket.WebSocket) -> websocket.WebSocket:
    """``ws`` without websocket-client's frame reader, for a connection whose frames ws_frames reads.

    That reader holds the WebSocket's own read method: a cycle, which would keep websocket-client's ~1.5 KB of
    objects per connection until a full garbage collection (they outlive the young collections while the handshake
    waits on the network) and leave the heap holed when one comes. Without it they are freed once let go.
    """
    ws.frame_buffer = None
    return ws


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the opening handshake sends besides the URL."""

    headers: tuple[str, ...] = ()
    """Extra header lines, ``Name: value``."""
    origin: str | None = None
    subprotocol: str | None = None


class Listener(Protocol):
    """Who hears what comes over a connection: the user that owns it (one object, no bound method per connection)."""

    def message_received(self, payload: bytes, arrived: float) -> None:
        """Each text or binary message, with the ``perf_counter()`` instant it arrived.

        Often called in the event loop's own greenlet (``_wake``), so it must never wait: no sleep, no blocking
        send, no lock another greenlet may hold. Counting, firing events and setting flags or events are fine."""

    def connection_lost(self, connection: WebSocketConnection, ending: WebSocketFailure | None) -> None:
        """Once, when the connection ends: None when we closed it, else why it ended."""


class WebSocketConnection:
    """An open WebSocket and the greenlet that reads it while frames come.

    ``connect`` opens it (websocket-client does the HTTP upgrade) and returns the connect time in ms; after that
    frames are written and read on the bare socket with users/ws/ws_frames.py (one read takes every frame that has
    arrived; websocket-client's own objects, ~1.5 KB per connection, are let go). ``start`` starts receiving;
    ``send`` writes a text message from any greenlet; ``close`` stops receiving and closes the socket. A connection
    with nothing to read holds no greenlet: the event loop watches its socket, hands a message that arrives whole
    to the listener itself, and starts a receive greenlet for anything else, which ends after RECEIVER_LINGER_S
    without a frame.
    """

    __slots__ = (
        "_insecure",
        "_limits",
        "_listener",
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
        self._listener: Listener | None = None
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
        finally:
            unlinked(ws)
        elapsed_ms = (time.perf_counter() - start) * 1000
        self.sock, self._send_lock = ws.sock, ws.lock
        self.sock.settimeout(None)  # the receive loop waits as long as it takes; replies have their own timers
        stamped(self.sock)  # a message is timed at its arrival, however busy the loop (arrival_clock)
        self._open = True
        if self._on_open_change is not None:
            self._on_open_change(1)
        return elapsed_ms

    def start(self, listener: Listener) -> None:
        """Start receiving: the loop watches the socket and tells ``listener`` of each message and of the end."""
        self._listener = listener
        self._readable = gevent.get_hub().loop.io(self.sock.fileno(), 1)
        self._watch()

    def _watch(self) -> None:
        """Wait for data with no greenlet: the loop calls ``_wake`` once the socket is readable."""
        if not self.closed:
            self._readable.start(self._wake)

    def _wake(self) -> None:
        """Data came to a watched socket (called by the event loop, in its own greenlet, which must never wait).

        A read that brings exactly one whole message is handed to the listener here and the socket is watched
        again: no greenlet for it (a group chat's message wakes every member of its room, and a greenlet each would
        be started and dropped for one message). Anything else (a part of a message or more than one, a control
        frame, TLS, the end, an error) goes to a receive greenlet, with the bytes read here.
        """
        self._readable.stop()
        if self.closed or self._receiver is not None:
            return
        sock = self.sock
        if self._reader is not None or not is_plain(sock):
            self._receiver = gevent.spawn(self._receive)
            return
        try:
            data, arrived = receive(sock._sock, RECEIVE_BYTES)  # the system's socket: a read that never waits
        except BlockingIOError:  # woken for nothing
            self._watch()
            return
        except OSError as error:
            self._receiver = gevent.spawn(self._finish, error_failure(error))
            return
        message = whole_message(data, self._limits.max_message_bytes)
        if message is None:
            self._receiver = gevent.spawn(self._receive, data, arrived)
            return
        self._listener.message_received(message, arrived)  # type: ignore[union-attr]  # start set it
        self._watch()

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

    def _receive(self, first: bytes | None = None, arrived: float = 0.0) -> None:
        """Read until nothing comes for RECEIVER_LINGER_S (then go back to watching) or the connection ends;
        ``first``: bytes read already (by ``_wake``), which ``arrived`` then.

        One read takes whatever has arrived; at most FRAMES_PER_TURN frames are handled before the loop yields to
        the other greenlets, however fast the server sends. Only TLS may hold decrypted bytes (``pending``). Reads
        take no lock: only this greenlet reads.
        """
        sock, readable, on_message = self.sock, self._readable, self._listener.message_received  # type: ignore[union-attr]
        hub = gevent.get_hub()
        linger = hub.loop.timer(RECEIVER_LINGER_S)
        pending = getattr(sock, "pending", None)
        reader, self._reader = self._reader or FrameReader(self._limits.max_message_bytes), None
        pings = PingMeter(self._limits.ws_max_pings)  # a second without frames ends a window anyway
        ending: WebSocketFailure | None = None
        arrived = arrived or time.perf_counter()
        try:
            while ending is None:
                data = b""
                if first is not None:
                    data, first = first, None
                elif not reader.backlog:  # else: frames of the last read are still to be parsed, stamped as it was
                    data, arrived = read(sock, RECEIVE_BYTES)
                if not data and not reader.backlog:
                    raise WebSocketFailure("connection dropped", UNEXPECTED)
                for opcode, payload in reader.feed(data, FRAMES_PER_TURN):
                    if opcode in (TEXT, BINARY):
                        on_message(payload, arrived)
                    elif opcode == CLOSE:
                        with contextlib.suppress(OSError):
                            self._send(close_frame(1000))  # the closing handshake's answer
                        ending = close_frame_failure(payload)
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
        if self._listener is not None:
            self._listener.connection_lost(self, None if was_closed else ending)

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
