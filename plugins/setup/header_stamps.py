"""Bytes that come with an HTTP answer's headers are timed by their arrival, not by when the loop read them.

geventhttpclient reads the status line and headers itself, and a REST answer's body nearly always arrives with them
in one read. On a busy generator that read runs late (another user holds the loop, a collection runs), and the
whole answer was timed by the clock at the read: the load generator's delay counted as the chatbot's. Every other
read of an answer is stamped with its arrival by the kernel (users/common/arrival_clock.py); this plugin stamps the
header read too. Every connection geventhttpclient makes in the process asks the kernel to stamp its arrivals (once,
as it is made), and every response (REST, login, health, streamed answers) records ``headers_arrived``: the arrival
of the newest bytes the header read took, which ``read_chunk`` gives as the arrival of the body bytes that came with
them (``None`` over TLS, where the clock is used as before).
"""

from __future__ import annotations

from typing import Any

import geventhttpclient.client
from geventhttpclient.connectionpool import ConnectionPool
from geventhttpclient.response import HTTPSocketPoolResponse
from locust import Events

from users.common.arrival_clock import is_plain, receive, stamped


class _StampedReads:
    """A plain socket whose reads also keep the arrival of their bytes, and the bytes (only ``recv`` is asked of it)."""

    __slots__ = ("arrived", "reads", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.arrived: float | None = None
        self.reads: list[bytes] = []

    def recv(self, size: int) -> bytes:
        data, self.arrived = receive(self.sock, size)
        self.reads.append(data)
        return data


class StampedResponse(HTTPSocketPoolResponse):
    """geventhttpclient's pooled response, its header read stamped (``headers_arrived``)."""

    headers_arrived: float | None = None
    """``time.perf_counter()`` of the arrival of the newest bytes read with the headers; None if not stamped."""
    header_reads: list[bytes] | None = None
    """The bytes the header read took, as they came (status line, headers, and what of the body came with them); None
    over TLS or when bytes left by an earlier answer came first."""

    def _read_headers(self, pre_buffered: bytes = b"") -> None:
        sock = self._sock
        if not is_plain(sock):
            super()._read_headers(pre_buffered)
            return
        reads = self._sock = _StampedReads(sock)
        try:
            super()._read_headers(pre_buffered)
        finally:
            if self._sock is reads:
                self._sock = sock
        self.headers_arrived = reads.arrived
        if not pre_buffered:
            self.header_reads = reads.reads

    def release(self) -> None:
        """Give the pool its own socket back (a whole answer read with its headers is released during the read)."""
        if type(self._sock) is _StampedReads:
            self._sock = self._sock.sock
        super().release()


_make_tcp_socket = ConnectionPool._create_tcp_socket
"""geventhttpclient's own socket factory (kept at import, so registering twice does not wrap it twice)."""


def stamped_tcp_socket(pool: ConnectionPool, family: int, socktype: int, protocol: int) -> Any:
    """geventhttpclient's TCP socket (its documented factory), its arrivals stamped from the start."""
    return stamped(_make_tcp_socket(pool, family, socktype, protocol))


def register(_events: Events) -> None:
    """Make every geventhttpclient connection of this process stamped and every request answer with a
    StampedResponse (locustfile.py calls it)."""
    ConnectionPool._create_tcp_socket = stamped_tcp_socket  # type: ignore[method-assign]
    geventhttpclient.client.HTTPSocketPoolResponse = StampedResponse  # type: ignore[misc]
