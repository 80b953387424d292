"""A stream that never completes an event (an endless line) fails with one name and a bounded buffer."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.conftest import failure_counts
from tests.loopback_server import LoopbackServer


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
