"""--honor-retry-after: a 429's Retry-After is waited out (measured by the server's own clock), counted in
summary.json, and still a failure; by default it is ignored, so a stress test keeps its pressure."""

from __future__ import annotations

import socket
import time
from itertools import pairwise

import pytest

from tests.conftest import failure_counts
from tests.loopback_server import LoopbackServer
from tests.users.hostile import hostile_run
from users.common.retry_after import MAX_RETRY_AFTER_S, retry_after_seconds

RETRY_AFTER_S = 1


class TooManyRequestsServer(LoopbackServer):
    """Answers every request with 429 and Retry-After: 1; notes when each request arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        super().__init__()

    def answer(self, connection: socket.socket) -> None:
        self.arrivals.append(time.monotonic())
        connection.sendall(
            f"HTTP/1.1 429 Too Many Requests\r\nRetry-After: {RETRY_AFTER_S}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )


def run_against_429(run_locust, *args: str) -> tuple[list[float], dict]:
    """The arrivals of the run's questions at a server that answers every one 429 (the probe's before the load left
    out: its 429 only warns), and the run's summary."""
    server = TooManyRequestsServer()
    try:
        run = hostile_run(run_locust, server.url, 3, "-u", "1", "-r", "1", "--think-time", "0", *args)
    finally:
        server.close()
    assert set(failure_counts(run)) == {"HTTP 429 Too Many Requests"}  # waited or not, a 429 is a failure
    assert "probe: RestChatUser's first exchange failed (HTTP 429 Too Many Requests)" in run.output
    arrivals, totals = server.arrivals[1:], run.summary["totals"]
    # Every request the server saw is a failed row, or one the end of the test cut short (sent, not answered).
    assert totals["failures"] == totals["count"], totals
    assert totals["count"] <= len(arrivals) <= totals["count"] + totals["cut_short"], (totals, arrivals)
    return arrivals, run.summary


def test_retry_after_is_honoured_when_asked(run_locust) -> None:
    arrivals, summary = run_against_429(run_locust, "--honor-retry-after")
    gaps = [later - earlier for earlier, later in pairwise(arrivals)]
    assert len(gaps) >= 1 and all(RETRY_AFTER_S - 0.05 < gap < RETRY_AFTER_S + 0.5 for gap in gaps), gaps
    waits = summary["retry_after"]
    assert waits["honored"] is True and waits["waits"] >= len(gaps), waits
    assert waits["waited_s"] == pytest.approx(sum(gaps), abs=0.3 + 0.05 * len(gaps)) or waits["waits"] > len(gaps)


def test_retry_after_is_ignored_by_default(run_locust) -> None:
    arrivals, summary = run_against_429(run_locust)
    assert len(arrivals) > 8  # the pressure stays: no second-long pauses (honoured: at most 4)
    assert "retry_after" not in summary


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), (" 0 ", 0.0), ("Thu, 01 Jan 1970 00:01:40 GMT", 60.0), ("soon", None), ("", None), (None, None),
     ("-5", None), ("Thu, 01 Jan 1970 00:00:10 GMT", 0.0)],
)  # fmt: skip
def test_retry_after_values(value, seconds) -> None:
    assert retry_after_seconds(value, now=40.0) == seconds
    assert MAX_RETRY_AFTER_S == 60.0
