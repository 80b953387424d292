"""A hostile WebSocket server on loopback, for the tests and bench/hostile_ws.py: the path of the handshake picks
the misbehaviour, so one server serves every case (a full ``ws://`` URL in --ws-path or --audio-path aims a user
at it while --host stays on demobot for well-behaved users).

- ``/ping-flood``: after the client's first message, ping frames as fast as the socket takes them.
- ``/huge-frame``: after the client's first message, the header of a 600 MB text frame, then its payload.
- ``/not-json``: every client message is answered with a binary message that is neither JSON nor UTF-8.
- ``/redirect``: the handshake is answered 302 with the same URL as its Location (a redirect loop).
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import time

from tests.loopback_server import LoopbackServer

HUGE_FRAME_BYTES = 600 * 1024 * 1024
"""The length the huge frame's header announces (the issue's 600 MB frame)."""

MISBEHAVE_FOR_S = 30.0
"""No connection is served longer than this, whatever the client does (every loop here is bounded)."""

PING_BLOCK = b"\x89\x00" * 4096
"""4096 empty ping frames, sent in one write."""

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(request: bytes) -> str:
    """The Sec-WebSocket-Accept answering the request's Sec-WebSocket-Key (RFC 6455)."""
    for line in request.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            digest = hashlib.sha1((value.strip() + WEBSOCKET_GUID).encode()).digest()
            return base64.b64encode(digest).decode()
    return ""


class HostileWebSocketServer(LoopbackServer):
    """Completes the WebSocket handshake by hand, then misbehaves as the request's path says."""

    def __init__(self) -> None:
        super().__init__()
        self.ws_url = self.url.replace("http://", "ws://")
        self.connections = 0

    def answer_request(self, connection: socket.socket, request: bytes) -> None:
        self.connections += 1
        path = request.split(b" ", 2)[1].decode("latin-1") if request.count(b" ") >= 2 else "/"
        if path.startswith("/redirect"):
            connection.sendall(
                f"HTTP/1.1 302 Found\r\nLocation: {self.ws_url}{path}\r\nContent-Length: 0\r\n\r\n".encode()
            )
            return
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept_key(request)}\r\n\r\n".encode()
        )
        deadline = time.monotonic() + MISBEHAVE_FOR_S
        connection.settimeout(MISBEHAVE_FOR_S)
        if not connection.recv(65536):  # the client's first message (or its first audio frame)
            return
        if path.startswith("/ping-flood"):
            while time.monotonic() < deadline:
                connection.sendall(PING_BLOCK)
        elif path.startswith("/huge-frame"):
            connection.sendall(b"\x81\x7f" + struct.pack("!Q", HUGE_FRAME_BYTES))
            chunk = b"x" * 65536
            for _ in range(HUGE_FRAME_BYTES // len(chunk)):
                connection.sendall(chunk)
        elif path.startswith("/not-json"):
            garbage = b"\x82\x04\xff\xfe\x00\x01"  # a binary message of 4 bytes that are not UTF-8
            while time.monotonic() < deadline:
                connection.sendall(garbage)
                if not connection.recv(65536):
                    return
