"""How a WebSocket exchange failed, in the three classes the WebSocket report counts apart.

- ``client``: the server refused what we sent: a 4xx handshake, close codes 1002/1003/1007-1010 and
  4000-4999, protocol errors.
- ``server``: the server says it failed: a 5xx handshake, close codes 1011-1014, error replies.
- ``unexpected``: nobody said anything: timeouts, refused or reset connections, a close without a code.
"""

from __future__ import annotations

import struct

import websocket

from users.common.http_failures import connection_failure, status_failure
from users.ws.ws_limits import REDIRECT_LOOP

CLIENT, SERVER, UNEXPECTED = "client", "server", "unexpected"
FAILURE_CLASSES = (CLIENT, SERVER, UNEXPECTED)
"""The three failure classes, in report order."""

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


def close_frame_failure(data: bytes) -> WebSocketFailure:
    if len(data) < 2:
        return close_failure(1005)
    code = struct.unpack("!H", data[:2])[0]
    return close_failure(code, data[2:].decode("utf-8", "replace")[:60])
