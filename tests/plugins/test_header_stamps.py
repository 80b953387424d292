"""An answer that comes whole with its headers, read late by a busy loop, is timed by its arrival."""

from __future__ import annotations

import time
from collections.abc import Iterator

import gevent
import geventhttpclient.client
import pytest
from geventhttpclient import HTTPClient
from geventhttpclient.connectionpool import ConnectionPool

from plugins.setup import header_stamps
from users.common.arrival_clock import STAMPS_AVAILABLE
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


def _hold_the_loop() -> None:
    held_until = time.perf_counter() + HELD_S
    while time.perf_counter() < held_until:
        pass


@pytest.mark.skipif(not STAMPS_AVAILABLE, reason="the kernel's arrival stamps are Linux on x86-64/arm64")
def test_a_whole_answer_read_late_with_its_headers_is_timed_by_its_arrival(demobot, stamped_responses) -> None:
    bot = demobot()
    client = HTTPClient.from_url(bot.url, concurrency=1)
    client.get("/healthcheck").read()  # a warm connection: the timed request below makes none
    gevent.spawn(_hold_the_loop)  # runs as soon as the request waits for its answer: the answer waits 50 ms unread
    started = time.perf_counter()
    response = client.get("/healthcheck")
    read_s = time.perf_counter() - started
    body, arrived = read_body(response, 1 << 20)
    assert b"ok" in body.lower()
    assert read_s >= HELD_S  # read after the loop was let go ...
    assert 0 < response.headers_arrived - started < 0.01, response.headers_arrived - started  # ... arrived at once
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
