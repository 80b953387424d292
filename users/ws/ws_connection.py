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
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import gevent
import websocket
from websocket import ABNF

from core.tls import websocket_sslopt
from users.common.http_failures import connection_failure, status_failure
from users.ws.ws_limits import PING_FLOOD, REDIRECT_LOOP, PingMeter, WsLimitSettings

CLIENT, SERVER, UNEXPECTED = "client", "server", "unexpected"
FAILURE_CLASSES = (CLIENT, SERVER, UNEXPECTED)
"""The three failure classes, in report order."""

CLOSE_TIMEOUT_S = 1.0
"""How long closing waits for the server's close frame before dropping the socket."""

NO_LOCK = contextlib.nullcontext()
"""Stands in for websocket-client's read lock (reusable: it holds no state)."""

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

CloseHandler = Callable[[WebSocketFailure | None], None]
"""Called once when the connection ends: None when we closed it, else why it ended."""


class WebSocketConnection:
    """An open WebSocket and the one greenlet that reads it.

    ``connect`` opens it and returns the connect time in ms; ``start`` spawns the receive loop;
    ``send`` writes a text message from any greenlet; ``close`` kills the loop and closes the socket.
    """

    __slots__ = ("_limits", "_on_close", "_on_message", "_on_open_change", "_open", "_receiver", "closed", "ws")

    def __init__(
        self,
        insecure: bool = False,
        on_open_change: Callable[[int], None] | None = None,
        limits: WsLimitSettings | None = None,
    ) -> None:
        """``on_open_change(+1)`` is called when the connection opens and ``(-1)`` when it closes (the WebSocket
        report plots latency against the connections open); ``limits`` bound what the server may send."""
        self._limits = limits or WsLimitSettings()
        self.ws = websocket.WebSocket(sslopt=websocket_sslopt(insecure), skip_utf8_validation=True)
        # Only the receive greenlet reads, so reads need no lock; sends keep theirs (the receive loop
        # answers pings while a task may be sending).
        self.ws.readlock = NO_LOCK
        self._receiver: gevent.Greenlet | None = None
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
        start = time.perf_counter()
        try:
            self.ws.connect(url, **options)
        except Exception as error:  # every way a handshake can fail becomes a named failure
            self.closed = True
            self.ws.shutdown()
            raise error_failure(error) from None
        elapsed_ms = (time.perf_counter() - start) * 1000
        self._open = True
        if self._on_open_change is not None:
            self._on_open_change(1)
        self.ws.handshake_response = None  # its headers cost ~1 KB per connection and are never read again
        self.ws.settimeout(None)  # the receive loop waits as long as it takes; replies have their own timers
        return elapsed_ms

    def start(self, on_message: MessageHandler, on_close: CloseHandler) -> None:
        """Spawn the receive loop."""
        self._on_message, self._on_close = on_message, on_close
        self._receiver = gevent.spawn(self._receive)

    def send(self, text: str) -> None:
        """Send one text message. Raises WebSocketFailure when the connection is gone."""
        if self.closed:
            raise WebSocketFailure("connection dropped", UNEXPECTED)
        try:
            self.ws.send(text)
        except Exception as error:
            raise error_failure(error) from None

    def close(self) -> None:
        """Stop receiving and close the connection (a clean 1000 close when it is still open)."""
        receiver, self._receiver = self._receiver, None
        if receiver is not None and receiver is not gevent.getcurrent():
            receiver.kill(block=False)
        self._uncount()
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):  # closing a broken socket must not fail a user's stop
                self._close_handshake()
            self.ws.shutdown()

    def _close_handshake(self) -> None:
        """Send a 1000 close and read until the server's close frame, for CLOSE_TIMEOUT_S at most.

        Not websocket-client's ``close``: that one reads whatever comes for the whole timeout without yielding and
        without a bound on a frame's length; this one refuses long frames from their header and yields per frame.
        """
        ws = self.ws
        ws.connected = False
        ws.send(struct.pack("!H", 1000), ABNF.OPCODE_CLOSE)
        ws.sock.settimeout(CLOSE_TIMEOUT_S)
        deadline = time.perf_counter() + CLOSE_TIMEOUT_S
        while time.perf_counter() < deadline and self._next_frame()[0] != ABNF.OPCODE_CLOSE:
            gevent.sleep(0)

    def _receive(self) -> None:
        ws, on_message = self.ws, self._on_message
        assert on_message is not None
        # Wait for data at the top of the loop rather than deep inside websocket-client's frame reader,
        # so an idle connection's parked greenlet keeps a smaller stack. websocket-client reads exactly
        # one frame's bytes, so no data waits in a buffer of its own; only TLS may hold decrypted bytes.
        # Waiting (or sleeping) before every frame also yields to the other greenlets, however fast the
        # server sends: a frame already readable is taken on the loop's next turn.
        hub = gevent.get_hub()
        readable = hub.loop.io(ws.sock.fileno(), 1)
        pending = getattr(ws.sock, "pending", None)
        pings = PingMeter(self._limits.ws_max_pings)
        ending: WebSocketFailure | None
        try:
            while True:
                if pending is None or not pending():
                    hub.wait(readable)
                else:
                    gevent.sleep(0)
                opcode, data = self._next_frame()
                if opcode == ABNF.OPCODE_CLOSE:
                    with contextlib.suppress(OSError, websocket.WebSocketException):
                        ws.send_close()  # the closing handshake's answer
                    ending = _close_frame_failure(data)
                    break
                if opcode == ABNF.OPCODE_PING:
                    if pings.flooded(time.perf_counter()):
                        ending = WebSocketFailure(PING_FLOOD, UNEXPECTED)
                        break
                    ws.pong(data)
                elif opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
                    on_message(data, time.perf_counter())
        except WebSocketFailure as failure:
            ending = failure
        except (OSError, websocket.WebSocketException, struct.error) as error:
            ending = None if self.closed else error_failure(error)
        finally:
            readable.close()
        self._finish(ending)

    def _next_frame(self) -> tuple[int, bytes]:
        """The next frame: a whole message (fragments joined), or a control frame; CONT for a fragment taken in.

        A frame's length is checked against --ws-max-message-mb from its header, before any of its payload is
        read, so an oversized answer costs nothing but its header. (websocket-client has no bound of its own.)
        """
        ws = self.ws
        header, fragments = ws.frame_buffer, ws.cont_frame
        if header.needs_header():
            header.recv_header()
        if header.needs_length():
            header.recv_length()
        so_far = len(fragments.cont_data[1]) if fragments.cont_data else 0
        if (header.length or 0) + so_far > self._limits.max_message_bytes:
            raise WebSocketFailure(self._limits.over_cap, UNEXPECTED)
        frame = ws.recv_frame()
        if frame.opcode not in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT):
            if frame.opcode == ABNF.OPCODE_PING and len(frame.data) > 125:
                raise websocket.WebSocketProtocolException("ping message too long")
            return frame.opcode, frame.data
        fragments.validate(frame)
        fragments.add(frame)
        if not fragments.is_fire(frame):
            return ABNF.OPCODE_CONT, b""
        opcode, whole = fragments.extract(frame)
        return opcode, whole.data

    def _finish(self, ending: WebSocketFailure | None) -> None:
        was_closed, self.closed = self.closed, True
        self._receiver = None
        self._uncount()
        self.ws.shutdown()
        if self._on_close is not None:
            self._on_close(None if was_closed else ending)

    def _uncount(self) -> None:
        if self._open:
            self._open = False
            if self._on_open_change is not None:
                self._on_open_change(-1)


def _close_frame_failure(data: bytes) -> WebSocketFailure:
    if len(data) < 2:
        return close_failure(1005)
    code = struct.unpack("!H", data[:2])[0]
    return close_failure(code, data[2:].decode("utf-8", "replace")[:60])
