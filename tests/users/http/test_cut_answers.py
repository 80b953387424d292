"""A REST answer cut short or slower than --request-timeout is a failure, never a success (hostile targets)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import failure_counts
from tests.loopback_server import LoopbackServer


class CuttingServer(LoopbackServer):
    """Answers every request with headers promising 100 bytes, sends 10 and closes; or, with ``slow_s``, sends
    the 100 bytes only after that many seconds."""

    def __init__(self, slow_s: float = 0.0) -> None:
        self.slow_s = slow_s
        self.answered = 0
        super().__init__()

    def answer(self, connection: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        body = b'{"answer": "' + b"x" * 86 + b'"}'
        self.answered += 1
        if self.slow_s:
            connection.sendall(head)
            time.sleep(self.slow_s)
            connection.sendall(body)
        else:
            connection.sendall(head + body[:10])  # then close: 90 bytes short


@pytest.fixture
def cutting() -> Iterator[CuttingServer]:
    server = CuttingServer()
    yield server
    server.close()


def test_an_answer_cut_short_is_a_failure(cutting: CuttingServer, run_locust) -> None:
    run = run_locust("--host", cutting.url, "-u", "2", "-r", "2", "-t", "3s", "--think-time", "0.2",
                     "--skip-host-check")  # fmt: skip
    totals = run.summary["totals"]
    assert cutting.answered > 0 and totals["count"] > 0
    assert totals["failures"] == totals["count"], run.summary["failures"]  # not one counted as a success
    assert set(failure_counts(run)) == {"answer cut short"}


def test_an_answer_slower_than_the_request_timeout_is_a_timeout(run_locust) -> None:
    slow = CuttingServer(slow_s=3.0)
    try:
        run = run_locust("--host", slow.url, "-u", "1", "-r", "1", "-t", "4s", "--think-time", "0",
                         "--request-timeout", "1", "--skip-host-check")  # fmt: skip
    finally:
        slow.close()
    totals = run.summary["totals"]
    assert totals["count"] > 0 and totals["failures"] == totals["count"], run.summary
    assert set(failure_counts(run)) == {"timeout"}
