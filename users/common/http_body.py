"""An HTTP body read as its bytes arrive, never more of it than a cap: shared by the REST, health and streaming users.

A hostile or broken target can send an answer of any size (a 600 MB JSON, a compressed bomb); the whole body
is never buffered before its size is known. Over the cap the reading stops, and the connection is closed
rather than reused, so the rest of the body is never read.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from typing import Any

import brotli
from geventhttpclient.response import HTTPParseError, HTTPSocketPoolResponse

from users.common.arrival_clock import is_plain, receive


class AnswerTooLarge(Exception):
    """The body (as sent, or decompressed) passed the cap."""


class UnknownEncoding(Exception):
    """The body came in a Content-Encoding this client cannot decode."""


def read_chunk(response: HTTPSocketPoolResponse) -> tuple[bytes, float]:
    """The body bytes that have arrived, waiting only until there is at least one (b"" at the end), and
    ``time.perf_counter()`` of when the newest of them reached the machine.

    Chunked transfer framing is removed by the response's parser, so a read that brings only framing
    bytes waits for the next read. (Locust's ``iter_content(n)`` waits for n bytes instead.)

    On a plain socket the read first waits until the socket is readable: the buffer is empty, so the last
    read took all there was, and a read tried at once would almost always fail (a system call and an
    exception per streamed token, for nothing). Waiting costs no time: the wait ends the moment bytes
    arrive, as the failed read's wait would. Its arrival is the kernel's stamp where the socket was asked to stamp
    (users/common/arrival_clock.py), else the clock at the read. A TLS socket may hold decrypted bytes the kernel
    does not see, so it is read at once as before and timed by the clock. Bytes that came with the headers arrived
    when they did (plugins/setup/header_stamps.py), where that was stamped.
    """
    arrived = None
    while True:
        if data := parsed_body(response):
            if arrived is None:  # read with the headers: nothing was read since
                arrived = getattr(response, "headers_arrived", None)
            return data, time.perf_counter() if arrived is None else arrived
        sock = response._sock
        if response.message_complete or sock is None:
            return b"", time.perf_counter() if arrived is None else arrived
        try:
            if is_plain(sock):
                sock._wait(sock._read_event)
                received, arrived = receive(sock, response.block_size)
            else:
                received = sock.recv(response.block_size)
        except BaseException:
            abandon(response)
            raise
        try:
            feed(response, received)
        except ConnectionResetError:
            abandon(response)
            raise


def parsed_body(response: HTTPSocketPoolResponse) -> bytes:
    """The body bytes the response's parser has given and no one has taken yet (b"" if none), taken now."""
    buffered = response._body_buffer
    if not buffered:
        return b""
    data = bytes(buffered)
    del buffered[:]
    return data


def feed(response: HTTPSocketPoolResponse, received: bytes) -> None:
    """Give the response's parser one read. b"" is the peer's close: it ends a close-delimited body, and a body it
    leaves incomplete raises ConnectionResetError."""
    if received:
        response.feed(received)
        return
    with contextlib.suppress(HTTPParseError):  # an incomplete body is reported just below
        response.feed(b"")  # tells the parser the peer closed, which ends a close-delimited body
    if not response.message_complete:
        raise ConnectionResetError("connection closed before the end of the response")


def abandon(response: HTTPSocketPoolResponse) -> None:
    """Stop reading a response early; its connection is closed rather than reused (the rest is never read)."""
    response.release()


class BoundedDecoder:
    """Undoes a Content-Encoding (identity, gzip, deflate, br) piece by piece, never giving more than ``cap`` bytes."""

    def __init__(self, encoding: str, cap: int) -> None:
        self.cap = cap
        self.size = 0
        encoding = encoding.strip().lower() or "identity"
        self._brotli = brotli.Decompressor() if encoding == "br" else None
        if encoding in ("gzip", "x-gzip"):
            self._zlib: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._zlib = _DeflateEither()
        elif encoding in ("identity", "br"):
            self._zlib = None
        else:
            raise UnknownEncoding(encoding)

    def decode(self, data: bytes) -> bytes:
        """The decoded bytes of the next piece; raises AnswerTooLarge once the total passes the cap."""
        room = self.cap - self.size + 1  # one byte more than allowed tells "over" from "exactly at the cap"
        if self._zlib is not None:
            out = self._zlib.decompress(data, room)
        elif self._brotli is not None:
            out = self._brotli.process(data, output_buffer_limit=room)
        else:
            out = data
        self.size += len(out)
        if self.size > self.cap:
            raise AnswerTooLarge
        return out


class _DeflateEither:
    """'deflate' is sent both as a zlib stream and as raw deflate; the first bytes tell which."""

    def __init__(self) -> None:
        self._inner: Any = None

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._inner is None:
            self._inner = zlib.decompressobj()
            try:
                return self._inner.decompress(data, max_length)
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._inner.decompress(data, max_length)


def read_body(response: HTTPSocketPoolResponse, cap: int) -> tuple[bytes, float]:
    """The whole body, decoded, and ``time.perf_counter()`` of when its last bytes arrived (the headers' arrival
    for an empty body); raises AnswerTooLarge past ``cap`` bytes (sent or decoded) without reading on.

    A Content-Length over the cap fails before a byte of the body is read. Connection errors propagate.
    """
    length = response.get("content-length")
    if isinstance(length, str) and length.strip().isdigit() and int(length) > cap:
        raise AnswerTooLarge
    encoding = response.get("content-encoding")
    decoder = BoundedDecoder(encoding if isinstance(encoding, str) else "", cap)
    pieces: list[bytes] = []
    received = 0
    last = getattr(response, "headers_arrived", None)
    while True:
        data, arrived = read_chunk(response)
        if not data:
            return b"".join(pieces), arrived if last is None else last
        last = arrived
        received += len(data)
        if received > cap:
            raise AnswerTooLarge
        pieces.append(decoder.decode(data))
