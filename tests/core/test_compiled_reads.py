"""core/_speedups.c's reads on a real loopback connection: ``recv_stamped`` and ``ChunkedStream``, which follows a
chunked body's framing and hands over whole OpenAI messages, and everything else to the HTTP parser."""

from __future__ import annotations

import errno
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from geventhttpclient.response import HTTPResponse

from core import speedups
from tests.conftest import loopback_pair
from users.common import arrival_clock
from users.llm.compiled_reads import body_start, plain_chunks

pytestmark = pytest.mark.skipif(speedups.ChunkedStream is None, reason="core/_speedups.c is not built here")


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    with loopback_pair() as (client, peer):
        client.setblocking(False)
        yield client, peer


def message(text: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"delta": {"content": text}}]}).encode() + b"\n\n"


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def stream(client: socket.socket, head: bytes = b"", fed: list | None = None) -> Any:
    """A ChunkedStream on ``client``; what it gives the HTTP parser is appended to ``fed``."""
    feed = (fed if fed is not None else []).append
    return speedups.ChunkedStream(client.fileno(), 65536, arrival_clock.MAX_AGE_S, orjson.loads, feed, head)


def read_after(reads, peer: socket.socket, raw: bytes):
    peer.sendall(raw)
    for _ in range(100):  # loopback delivers within the send; allow a slow machine a moment
        if (got := reads.read()) is not None:
            return got
        time.sleep(0.001)
    pytest.fail("nothing arrived")


def test_whole_chunks_of_whole_messages_are_read_here(connection) -> None:
    client, peer = connection
    reads = stream(client)
    body, arrived, scanned = read_after(reads, peer, chunk(message("a")) + chunk(message("b") + message("c")))
    assert body == message("a") + message("b") + message("c")  # the chunk framing is gone
    assert scanned == (["a", "b", "c"], False, None, False) and arrived <= time.perf_counter()
    assert reads.in_step


def test_a_chunk_split_across_reads_goes_to_the_parser_and_the_framing_stays_in_step(connection) -> None:
    client, peer = connection
    reads = stream(client)
    whole = chunk(message("split"))
    first = read_after(reads, peer, whole[:9])
    second = read_after(reads, peer, whole[9:] + chunk(message("x"))[:3])
    assert first[0] + second[0] == whole + chunk(message("x"))[:3] and first[2] is None and second[2] is None
    assert reads.in_step
    rest = read_after(reads, peer, chunk(message("x"))[3:])  # ends a chunk: still raw (it began mid-chunk)
    assert rest[2] is None
    assert read_after(reads, peer, chunk(message("next")))[2] == (["next"], False, None, False)


def test_the_body_part_of_the_header_read_sets_where_the_framing_stands(connection) -> None:
    client, peer = connection
    whole = chunk(message("first"))
    reads = stream(client, head=whole + whole[:5])  # the header read took a chunk and a half
    assert read_after(reads, peer, whole[5:])[2] is None
    assert read_after(reads, peer, chunk(message("second")))[2] == (["second"], False, None, False)


def test_the_last_chunk_after_whole_chunks_goes_to_the_parser_after_them(connection) -> None:
    client, peer = connection
    fed: list[bytes] = []
    reads = stream(client, fed=fed)
    body, _, scanned = read_after(reads, peer, chunk(message("a")) + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    assert body == message("a") + b"data: [DONE]\n\n" and scanned == (["a"], False, None, True)
    assert fed == [b"0\r\n\r\n"] and not reads.in_step
    assert read_after(reads, peer, b"more")[:3:2] == (b"more", None)  # the HTTP parser's from here


@pytest.mark.parametrize(
    "raw",
    [
        chunk(b'data: {"error": "x"}\n\n') + b"0\r\n\r\n",
        chunk(message("a")) + b"0\r\nTrailer: x\r\n\r\n",
        chunk(message("a")) + b"0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    ],
    ids=["after a message it cannot read", "with a trailer", "with bytes after it"],
)
def test_any_other_end_of_the_body_is_the_parsers(connection, raw: bytes) -> None:
    client, peer = connection
    fed: list[bytes] = []
    reads = stream(client, fed=fed)
    assert read_after(reads, peer, raw)[:3:2] == (raw, None)
    assert fed == [] and not reads.in_step


@pytest.mark.parametrize(
    "raw",
    [b"0\r\n\r\n", b"5;name=value\r\nhello\r\n", b"zz\r\n", b"5 \r\nhello\r\n", b"1" * 16 + b"\r\n", b"5\r\nhelloXY"],
    ids=["the last chunk", "an extension", "not hex", "a space", "16 digits", "no CRLF after the data"],
)
def test_anything_but_plain_chunks_leaves_the_body_to_the_parser(connection, raw: bytes) -> None:
    client, peer = connection
    reads = stream(client)
    assert read_after(reads, peer, raw) == (raw, pytest.approx(time.perf_counter(), abs=1), None)
    assert not reads.in_step
    after = chunk(message("a"))
    assert read_after(reads, peer, after)[:3:2] == (after, None)  # the HTTP parser's to the end


def test_messages_are_left_to_the_parser_while_it_is_in_the_middle_of_one(connection) -> None:
    client, peer = connection
    reads = stream(client)
    reads.scan = False
    whole = chunk(message("a"))
    assert read_after(reads, peer, whole) == (whole, pytest.approx(time.perf_counter(), abs=1), None)
    reads.scan = True
    assert read_after(reads, peer, chunk(b'data: {"error": "no"}\n\n'))[2] is None  # an error: the parser's


def test_nothing_to_read_and_the_peer_closing(connection) -> None:
    client, peer = connection
    reads = stream(client)
    assert reads.read() is None
    peer.close()
    time.sleep(0.01)
    data, arrived, scanned = reads.read()
    assert data == b"" and scanned is None and arrived <= time.perf_counter()


def test_a_closed_or_bad_socket_raises() -> None:
    with pytest.raises(OSError) as raised:
        speedups.ChunkedStream(-1, 65536, 10.0, orjson.loads, print, b"")
    assert raised.value.errno == errno.EBADF
    with pytest.raises(ValueError):
        speedups.ChunkedStream(0, 0, 10.0, orjson.loads, print, b"")
    with pytest.raises(ValueError):
        speedups.recv_stamped(0, 1 << 30, 10.0)
    with pytest.raises(RuntimeError, match="not initialised"):
        speedups.ChunkedStream.__new__(speedups.ChunkedStream).read()


@pytest.mark.skipif(not arrival_clock.STAMPS_AVAILABLE, reason="the kernel stamps arrivals on Linux x86-64/arm64 only")
def test_a_late_read_is_timed_by_the_arrival(connection) -> None:
    client, peer = connection
    arrival_clock.stamped(client)
    reads = stream(client)
    for _ in range(100):  # the kernel turns stamping on a moment after the first socket asks
        peer.sendall(chunk(message("probe")))
        time.sleep(0.005)
        if time.perf_counter() - read_after(reads, peer, b"")[1] > 0.004:
            break
    sending = time.perf_counter()
    peer.sendall(chunk(message("late")))
    sent = time.perf_counter()
    time.sleep(0.05)  # the loop is busy elsewhere: the read comes 50 ms late
    _, arrived, scanned = reads.read()
    assert scanned == (["late"], False, None, False)
    assert sending - 0.001 <= arrived <= sent + 0.001, ((arrived - sending) * 1000, (sent - sending) * 1000)


@pytest.mark.parametrize(
    ("reads", "body"),
    [
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"], b"5\r\nhel"),
        ([b"HTTP/1.1 200 OK\r\nA: b\r", b"\n\r\n"], b""),
        ([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"], None),
        ([b"HTTP/1.1 200 OK\nA: b\n\n5\r\n\r\n\r\n"], None),
        ([b"HTTP/1.1 200 OK\r\nA: b"], None),
        (None, None),
    ],
    ids=["with a body part", "headers in two reads", "an interim answer", "LF line ends", "unfinished", "not kept"],
)
def test_the_body_start_is_found_only_where_it_is_sure(reads: list[bytes] | None, body: bytes | None) -> None:
    assert body_start(reads) == body


def answer_headers(*lines: str) -> HTTPResponse:
    response = HTTPResponse()
    response.feed(("HTTP/1.1 200 OK\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode())
    return response


@pytest.mark.parametrize(
    ("lines", "plain"),
    [
        (["Transfer-Encoding: chunked"], True),
        (["Transfer-Encoding: Chunked ", "Content-Encoding: identity"], True),
        (["Transfer-Encoding: chunked", "Content-Encoding: gzip"], False),
        (["Transfer-Encoding: chunked", "Content-Encoding: gzip", "Content-Encoding: identity"], False),
        (["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"], False),
        (["Content-Length: 5"], False),
        ([], False),
    ],
    ids=["chunked", "chunked, identity", "gzip", "two encodings", "two transfer codings", "a length", "neither"],
)
def test_only_a_plain_chunked_body_is_read_in_c(lines: list[str], plain: bool) -> None:
    assert plain_chunks(answer_headers(*lines)) is plain
