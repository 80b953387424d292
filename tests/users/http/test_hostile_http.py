"""Hostile HTTP targets against the REST, health and streaming users: a huge answer, headers dripped a byte at a
time, a redirect loop, a reply that is not JSON. Each run ends on time with one clear failure name."""

from __future__ import annotations

import socket
import time

from tests.conftest import failure_counts
from tests.loopback_server import LoopbackServer
from tests.users.hostile import hostile_run, peak_rss_mb


class HugeAnswerServer(LoopbackServer):
    """Answers with a 600 MB JSON body as fast as it can; every other answer says its length up front."""

    SIZE = 600 << 20

    def __init__(self) -> None:
        self.answers = 0
        super().__init__()

    def answer(self, connection: socket.socket) -> None:
        self.answers += 1
        length = f"Content-Length: {self.SIZE}\r\n" if self.answers % 2 else "Connection: close\r\n"
        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n".encode())
        connection.sendall(b'{"answer": "')
        block = b"x" * (1 << 20)
        for _ in range(self.SIZE >> 20):  # the client is expected to hang up after 16 MB
            connection.sendall(block)


def test_a_600_mb_answer_fails_over_the_cap_and_stays_bounded(run_locust) -> None:
    server = HugeAnswerServer()
    try:
        run = hostile_run(run_locust, server.url, 3, "-u", "2", "-r", "2", "--think-time", "0.1",
                          "--monitor-interval", "0.5")  # fmt: skip
    finally:
        server.close()
    totals = run.summary["totals"]
    assert totals["count"] > 2 and totals["failures"] == totals["count"], run.summary["failures"]
    assert set(failure_counts(run)) == {"answer over 16 MB"}
    assert peak_rss_mb(run) < 300  # before: two such answers took the process to 2 GB, counted as successes


class DrippingServer(LoopbackServer):
    """Sends its response headers one byte every 0.2 s, so no single read ever waits long."""

    def answer(self, connection: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"z" * 10_000
        for byte in head:  # at most 2,000 s, but the client hangs up at its deadline
            connection.sendall(bytes([byte]))
            time.sleep(0.2)


def test_dripped_headers_fail_as_timeout_at_the_request_timeout(run_locust) -> None:
    server = DrippingServer()
    try:
        # The probe is left out: against this server it takes its own bound (3 s for the two users), which left the
        # run 2 s of GRACE_S for start and stop; the other hostile tests here probe as every run does.
        run = hostile_run(run_locust, server.url, 4, "--user-mix", "RestChatUser,HealthCheckUser", "-u", "2",
                          "-r", "2", "--think-time", "0", "--request-timeout", "1", "--skip-probe")  # fmt: skip
    finally:
        server.close()
    rows = run.rows()
    assert sum(row["count"] for key, row in rows.items() if key.startswith("POST chat:")) >= 2, rows
    assert rows["GET health"]["count"] >= 1, rows  # before: 0 requests, 0 failures, exit 0
    totals = run.summary["totals"]
    assert totals["failures"] == totals["count"]
    assert set(failure_counts(run)) == {"timeout"}


class RedirectLoopServer(LoopbackServer):
    """Sends every request back to where it came from."""

    def answer(self, connection: socket.socket) -> None:
        connection.sendall(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /again\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )


def test_a_redirect_loop_has_one_name_in_every_http_user(run_locust) -> None:
    server = RedirectLoopServer()
    try:
        run = hostile_run(run_locust, server.url, 3, "--user-mix", "RestChatUser,HealthCheckUser,StreamingChatUser",
                          "-u", "3", "-r", "3", "--think-time", "0.2")  # fmt: skip
    finally:
        server.close()
    names = {key.split(" ")[0] for key in run.rows()}
    assert {"POST", "GET", "E2E"} <= names, names
    assert set(failure_counts(run)) == {"redirect loop"}  # before: RetriesExceeded, HTTP 307 …


class NotJsonServer(LoopbackServer):
    """Answers a chat question with JSON-looking bytes that are not UTF-8, and a stream with such an event."""

    def _answer(self, connection: socket.socket) -> None:  # the request decides the answer
        with connection:
            streamed = b"event-stream" in connection.recv(65536)
            body = b'{"answer": "caf\xe9"}'  # Latin-1: U+FFFD would hide it and count the answer as a good one
            if streamed:
                body = b'data: {"choices": [{"delta": {"content": "caf\xe9"}}]}\n\ndata: [DONE]\n\n'
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nContent-Type: application/json\r\n\r\n"
            connection.sendall(head.encode() + body)


def test_a_reply_that_is_not_json_or_not_utf8_has_one_name(run_locust) -> None:
    server = NotJsonServer()
    try:
        run = hostile_run(run_locust, server.url, 3, "--user-mix", "RestChatUser,StreamingChatUser", "-u", "2",
                          "-r", "2", "--think-time", "0.2")  # fmt: skip
    finally:
        server.close()
    names = {key.split(" ")[0] for key in run.rows()}
    assert {"POST", "E2E"} <= names, names
    totals = run.summary["totals"]
    assert totals["count"] > 0 and totals["failures"] == totals["count"], run.summary["failures"]
    assert set(failure_counts(run)) == {"answer is not JSON"}
