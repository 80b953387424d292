"""StreamingHttpClient keeps each request head geventhttpclient writes and sends it again with each body's length: the
bytes on the wire must be the ones geventhttpclient itself sends, over the same kept-alive connection."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import gevent
import pytest
from geventhttpclient import HTTPClient

from tests.loopback_server import LoopbackServer
from users.llm.http_stream import HEADS_KEPT, StreamingHttpClient

HEADERS = {
    "Content-Type": "application/json",
    "Accept": "text/event-stream",
    "Authorization": "Bearer token-1",
    "X-Tenant": "blue",
}
BODIES = [b'{"q": "one"}', b"", '{"q": "caf\u00e9 \u2615"}'.encode(), b"x" * 100_000]
"""Unequal bodies: short, empty, UTF-8 beyond ASCII, and one far larger than a socket read."""


class RecordingServer(LoopbackServer):
    """Keeps every request as it came (and on which connection), and answers each with a kept-alive 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, bytes]] = []
        self.connections = 0
        super().__init__()

    def answer_request(self, connection: socket.socket, request: bytes) -> None:
        self.connections += 1
        number, buffer = self.connections, request
        while buffer:
            while b"\r\n\r\n" not in buffer or len(buffer) < _request_size(buffer):
                if not (more := connection.recv(65536)):
                    return
                buffer += more
            size = _request_size(buffer)
            self.requests.append((number, buffer[:size]))
            buffer = buffer[size:]
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            if not buffer:
                buffer = connection.recv(65536)


def _request_size(buffer: bytes) -> int:
    head, _, _ = buffer.partition(b"\r\n\r\n")
    length = next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return len(head) + 4 + int(length)


def _post(client: StreamingHttpClient | HTTPClient, body: bytes, headers: dict[str, str]) -> None:
    response = client.post("/v1/chat", body, headers)
    assert response.status_code == 200 and response.read() == b"ok"


def test_a_kept_head_sends_what_geventhttpclient_sends_on_one_connection() -> None:
    server = RecordingServer()
    streaming = StreamingHttpClient(server.url, timeout_s=5)
    plain = HTTPClient.from_url(server.url, concurrency=1, connection_timeout=5, network_timeout=5)
    try:
        for body in BODIES:
            _post(streaming, body, HEADERS)
            _post(plain, body, HEADERS)
        renewed = {**HEADERS, "Authorization": "Bearer token-2"}  # a new sign-in: a new head
        _post(streaming, BODIES[0], renewed)
        _post(plain, BODIES[0], renewed)
    finally:
        streaming.close(), plain.close(), server.close()
    kept = [request for number, request in server.requests if number == 1]
    sent_by_geventhttpclient = [request for number, request in server.requests if number == 2]
    assert len(kept) == len(BODIES) + 1 and server.connections == 2  # one connection each, kept alive
    assert kept == sent_by_geventhttpclient
    assert b"Content-Length: 0\r\n" in kept[1] and b"Bearer token-2" in kept[-1] and b"token-1" not in kept[-1]
    assert len(streaming._heads) == 2


def test_headers_that_change_how_a_body_is_sent_are_left_to_geventhttpclient() -> None:
    client = StreamingHttpClient("http://127.0.0.1:9", timeout_s=5)  # nothing is sent
    for name in ("Content-Length", "transfer-encoding", "EXPECT"):
        assert client._head("/v1/chat", {**HEADERS, name: "5"}) is None
    assert client._head("/v1/chat", HEADERS) is not None


def test_kept_heads_stay_few_however_often_the_token_changes() -> None:
    client = StreamingHttpClient("http://127.0.0.1:9", timeout_s=5)
    for token in range(10 * HEADS_KEPT):
        assert client._head("/v1/chat", {**HEADERS, "Authorization": f"Bearer {token}"}) is not None
    assert 0 < len(client._heads) <= HEADS_KEPT


def test_a_kept_head_is_written_once_and_framing_headers_are_sent_by_geventhttpclient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = RecordingServer()
    client = StreamingHttpClient(server.url, timeout_s=5)
    built, build = [], client._client._build_request

    def counted(*args: Any, **kwargs: Any) -> str:
        built.append(kwargs["body"])
        return build(*args, **kwargs)

    monkeypatch.setattr(client._client, "_build_request", counted)
    try:
        for body in BODIES[:3]:
            _post(client, body, HEADERS)
        _post(client, b"12345", {**HEADERS, "Content-Length": "5"})  # the user's own length: geventhttpclient's request
    finally:
        client.close(), server.close()
    assert built == [b"", b"12345"]  # one head kept for three requests, then the whole request by geventhttpclient
    assert server.requests[-1][1].endswith(b"Content-Length: 5\r\nHost: " + server.url[7:].encode() + b"\r\n\r\n12345")


class SilentServer(LoopbackServer):
    """Accepts and never reads: a big request's send blocks once the socket buffers are full."""

    def answer(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            connection.recv(1, socket.MSG_PEEK)  # the first bytes came; read no more until the client gives up
            time.sleep(5)


def test_a_send_cut_short_closes_the_connection_and_frees_its_slot() -> None:
    server = SilentServer()
    client = StreamingHttpClient(server.url, timeout_s=5)
    pool = client._client._connection_pool
    try:
        with pytest.raises(gevent.Timeout), gevent.Timeout(0.5):
            client.post("/v1/chat", b"x" * (64 << 20), HEADERS)  # far more than loopback's socket buffers take
        assert not pool._semaphore.locked()  # else the user's next question would wait for a slot forever
    finally:
        client.close(), server.close()
