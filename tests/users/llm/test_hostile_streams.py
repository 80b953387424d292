"""A stream that never completes an event (an endless line) fails with one name and a bounded buffer."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import failure_counts
from tests.loopback_server import LoopbackServer
from tests.users.hostile import hostile_run, peak_rss_mb


class EndlessLineServer(LoopbackServer):
    """Answers a streaming request with SSE headers, then 'data: xxxx…' without a newline, as fast as it can."""

    def __init__(self) -> None:
        self.sent_mb = 0.0
        super().__init__()

    def answer(self, connection: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: identity\r\n\r\ndata: "
        chunk = b"x" * 65536
        connection.sendall(head)
        for _ in range(2000):  # at most 128 MB per answer; the client is expected to give up long before
            connection.sendall(chunk)
            self.sent_mb += 1 / 16


@pytest.fixture
def endless() -> Iterator[EndlessLineServer]:
    server = EndlessLineServer()
    yield server
    server.close()


def test_an_endless_line_fails_as_no_event_and_stays_bounded(endless: EndlessLineServer, run_locust) -> None:
    run = run_locust("--host", endless.url, "--user-mix", "StreamingChatUser", "-u", "2", "-r", "2", "-t", "4s",
                     "--think-time", "0.2", "--skip-host-check", "--monitor-interval", "0.5")  # fmt: skip
    totals = run.summary["totals"]
    assert totals["count"] > 0 and totals["failures"] == totals["count"], run.summary["failures"]
    assert set(failure_counts(run)) == {"no event in 1 MB of stream"}
    assert endless.sent_mb > totals["count"]  # the server did send more than 1 MB for each ...
    peak_mb = run.summary["resources"]["processes"]["load generator"]["memory_mb"]["peak"]
    assert peak_mb < 300, peak_mb  # ... and the client stayed within its budget (issue: 6 GB in 15 s before)


class EndlessNdjsonLineServer(EndlessLineServer):
    """The same endless line in an NDJSON stream: '{"message": {"content": "xxxx…' without a newline."""

    def answer(self, connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n")
        connection.sendall(b'{"message": {"content": "')
        chunk = b"x" * 65536
        for _ in range(2000):  # at most 128 MB per answer
            connection.sendall(chunk)
            self.sent_mb += 1 / 16


def test_an_endless_ndjson_line_fails_as_no_event_and_stays_bounded(run_locust) -> None:
    server = EndlessNdjsonLineServer()
    try:
        run = hostile_run(run_locust, server.url, 3, "--user-mix", "StreamingChatUser", "--stream-format", "ndjson",
                          "-u", "2", "-r", "2", "--think-time", "0.2", "--monitor-interval", "0.5")  # fmt: skip
    finally:
        server.close()
    totals = run.summary["totals"]
    assert totals["count"] > 0 and totals["failures"] == totals["count"], run.summary["failures"]
    assert set(failure_counts(run)) == {"no event in 1 MB of stream"}
    assert server.sent_mb > totals["count"]
    assert peak_rss_mb(run) < 300


class NeverEndingStreamServer(LoopbackServer):
    """Odd connections drip their headers a byte every 0.2 s; even ones send one token, then a keep-alive comment
    every 0.1 s forever: neither answer ever ends."""

    def __init__(self) -> None:
        self.connections = 0
        self.held_s: list[float] = []
        """How long each answer lasted before the client hung up (the server's own clock)."""
        super().__init__()

    def answer(self, connection: socket.socket) -> None:
        started = time.monotonic()
        try:
            self._never_end(connection)
        finally:
            self.held_s.append(time.monotonic() - started)

    def _never_end(self, connection: socket.socket) -> None:
        self.connections += 1
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n"
        if self.connections % 2:
            for byte in head + b"X-Padding: " + b"z" * 10_000:
                connection.sendall(bytes([byte]))
                time.sleep(0.2)
            return
        connection.sendall(head + b'\r\ndata: {"choices": [{"delta": {"content": "Hi"}}]}\n\n')
        for _ in range(20_000):
            connection.sendall(b": still thinking\n\n")
            time.sleep(0.1)


def test_a_stream_that_never_ends_fails_as_stream_timeout_at_its_deadline(run_locust) -> None:
    server = NeverEndingStreamServer()
    try:
        run = hostile_run(run_locust, server.url, 4, "--user-mix", "StreamingChatUser", "-u", "2", "-r", "2",
                          "--think-time", "0", "--stream-timeout", "1")  # fmt: skip
    finally:
        server.close()
    totals = run.summary["totals"]
    assert totals["count"] >= 4 and totals["failures"] == totals["count"], run.summary["failures"]
    assert set(failure_counts(run)) == {"stream timeout"}
    assert server.held_s and all(0.9 < held < 1.6 for held in server.held_s[:-2]), server.held_s  # at its deadline
