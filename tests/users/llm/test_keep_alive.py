"""A streamed answer's connection is reused when the body's end comes after the server's done marker, as its own write
(a chunked body's last chunk, as ASGI servers send it): StreamingChatUser reads it (users/llm/answer_reader.py), for a
short while at most, so that the next question does not pay a new connection inside its TTFT."""

from __future__ import annotations

import re
import socket
import time

import pytest

from tests.conftest import failure_counts
from tests.loopback_server import LoopbackServer
from users.llm.answer_reader import BODY_NOT_ENDED

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENTS = (b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n', b"data: [DONE]\n\n")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class LateEndServer(LoopbackServer):
    """Keep-alive OpenAI streams whose body's last chunk comes ``late_s`` after ``data: [DONE]`` (None: never, the
    connection is closed instead); counts the connections that ask."""

    def __init__(self, late_s: float | None) -> None:
        self.late_s, self.connections = late_s, 0
        super().__init__()

    def answer_request(self, connection: socket.socket, request: bytes) -> None:
        self.connections += bool(request)  # not the reachability check before the start, which sends nothing
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while request:
            head, _, body = request.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            while len(body) < length:
                body += connection.recv(65536)
            connection.sendall(HEAD + chunk(EVENTS[0]))
            connection.sendall(chunk(EVENTS[1]))
            if self.late_s is None:
                return  # closes the connection: the body never ends, and nothing is left to wait for
            time.sleep(self.late_s)
            connection.sendall(b"0\r\n\r\n")
            request = connection.recv(65536)


@pytest.mark.parametrize(
    ("late_s", "reused"), [(0.05, True), (2.0, False), (None, False)], ids=["end-soon", "end-too-late", "closed"]
)
def test_the_connection_is_reused_once_the_body_ends_after_the_done_marker(run_locust, late_s, reused) -> None:
    server = LateEndServer(late_s)
    users = ("--user-mix", "StreamingChatUser", "-u", "2", "-r", "2", "--think-time", "0", "--skip-probe")
    started = time.monotonic()
    run = run_locust("--host", server.url, *users, "-t", "3s")
    server.close()
    assert run.returncode == 0 and not failure_counts(run), run.output
    answers = run.summary["llm"]["requests"]
    # An answer ends at its done marker: the wait for the body's end is not in it.
    assert run.summary["llm"]["e2e_ms"]["p50"] < 25, run.summary["llm"]["e2e_ms"]
    if reused:  # one connection per user: the body's end is read
        assert answers >= 10 and server.connections == 2, (answers, server.connections)
        assert BODY_NOT_ENDED not in run.output
    else:  # a body that does not end within 0.5 s costs its connection, not the answer, and the run ends on time
        assert answers >= 4 and server.connections >= answers, (answers, server.connections)
        assert time.monotonic() - started < 15
        if late_s is None:  # closed at once: a lost connection, but no wait to warn of
            assert BODY_NOT_ENDED not in run.output and answers >= 10, answers
        else:
            assert run.output.count(BODY_NOT_ENDED) == 1, run.output  # said once, not once per answer
