"""An answer that comes whole with its headers, read late by a busy loop, is timed by its arrival (the hold starts
once the answer is on the socket, so a slow server under a busy machine cannot make the test pass or fail)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.monkey
import geventhttpclient.client
import pytest
from geventhttpclient import HTTPClient
from geventhttpclient.connectionpool import ConnectionPool

from plugins.setup import header_stamps
from users.common.arrival_clock import STAMPS_AVAILABLE, receive
from users.common.http_body import read_body

HELD_S = 0.05


@pytest.fixture
def stamped_responses() -> Iterator[None]:
    response, make_socket = geventhttpclient.client.HTTPSocketPoolResponse, ConnectionPool._create_tcp_socket
    header_stamps.register(None)  # type: ignore[arg-type]
    try:
        yield
    finally:
        geventhttpclient.client.HTTPSocketPoolResponse = response
        ConnectionPool._create_tcp_socket = make_socket  # type: ignore[method-assign]


@pytest.mark.skipif(not STAMPS_AVAILABLE, reason="the kernel's arrival stamps are Linux on x86-64/arm64")
def test_a_whole_answer_read_late_with_its_headers_is_timed_by_its_arrival(
    demobot, stamped_responses, monkeypatch
) -> None:
    readable_at: list[float] = []
    select = gevent.monkey.get_original("select", "select")

    def late_read(sock: Any, size: int) -> tuple[bytes, float]:
        """A busy loop: the header read starts HELD_S after the answer is on the socket (no switch meanwhile)."""
        select([sock], [], [], 5)
        readable_at.append(time.perf_counter())
        while time.perf_counter() < readable_at[-1] + HELD_S:
            pass
        return receive(sock, size)

    bot = demobot()
    client = HTTPClient.from_url(bot.url, concurrency=1)
    client.get("/healthcheck").read()  # a warm connection: the timed request below makes none
    monkeypatch.setattr(header_stamps, "receive", late_read)
    started = time.perf_counter()
    response = client.get("/healthcheck")
    read_at = time.perf_counter()
    body, arrived = read_body(response, 1 << 20)
    assert b"ok" in body.lower() and len(readable_at) == 1
    assert read_at >= readable_at[0] + HELD_S  # read HELD_S after the answer was there, ...
    assert started < response.headers_arrived <= readable_at[0]  # ... timed when it came
    assert arrived == response.headers_arrived  # the body came with the headers: the same arrival
    # The whole answer was read with its headers, and the connection went back to the pool during that read:
    # the pool holds the real socket (a wrapper would have no sendall), so the next request on it works.
    assert client.get("/healthcheck").status_code == 200


def test_over_tls_the_clock_at_the_read_is_kept(stamped_responses) -> None:
    class _TlsLike:  # not a plain gevent socket: what a TLS connection is to arrival_clock.is_plain
        def recv(self, _size: int) -> bytes:
            return b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"

    response = header_stamps.StampedResponse(_TlsLike(), None)  # type: ignore[arg-type]
    assert response.status_code == 204
    assert response.headers_arrived is None
