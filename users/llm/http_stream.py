"""An HTTP client for streamed answers that hands over body bytes the moment they arrive.

Locust's FastHttp ``iter_content(n)`` and ``iter_lines()`` wait until n bytes (1 KiB) have piled up, which
delays a small first token until later tokens push it through and doubles the measured TTFT. This
client reads whatever the socket has, so a first token sent alone is seen when it arrives. It wraps
geventhttpclient (the library under Locust's FastHttpUser): one keep-alive connection per user.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPParseError, HTTPSocketPoolResponse

from core.tls import context_factory

BLOCK_SIZE = 64 * 1024
"""Most bytes taken from the socket per read; a read returns as soon as any bytes are there."""


class StreamingHttpClient:
    """One keep-alive connection to the chatbot for streamed POSTs; certificates are verified unless insecure."""

    def __init__(self, base_url: str, timeout_s: float, insecure: bool = False) -> None:
        self.base_path = urlsplit(base_url).path.rstrip("/")
        self._client = HTTPClient.from_url(
            base_url,
            concurrency=1,
            connection_timeout=timeout_s,
            # No per-read timeout: the user bounds each answer with its own first-token and stream
            # timeouts, and a timer per socket read would cost ~5 µs on every chunk.
            network_timeout=None,
            block_size=BLOCK_SIZE,
            insecure=insecure,
            ssl_context_factory=context_factory(insecure),
        )

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> HTTPSocketPoolResponse:
        """Send a POST and return as soon as the response headers are in; the body is read with read_chunk."""
        return self._client.post(self.base_path + path, body=body, headers=headers)

    def close(self) -> None:
        self._client.close()


def read_chunk(response: HTTPSocketPoolResponse) -> bytes:
    """The body bytes that have arrived, waiting only until there is at least one; b"" at the end.

    Chunked transfer framing is removed by the response's parser, so a read that brings only framing
    bytes waits for the next read.
    """
    while True:
        buffered = response._body_buffer
        if buffered:
            data = bytes(buffered)
            del buffered[:]
            return data
        sock = response._sock
        if response.message_complete or sock is None:
            return b""
        try:
            received = sock.recv(response.block_size)
        except BaseException:
            response.release()
            raise
        if received:
            response.feed(received)
            continue
        with contextlib.suppress(HTTPParseError):  # an incomplete body is reported just below
            response.feed(b"")  # tells the parser the peer closed, which ends a close-delimited body
        if not response.message_complete:
            response.release()
            raise ConnectionResetError("connection closed before the end of the response")


def abandon(response: HTTPSocketPoolResponse) -> None:
    """Stop reading a response early; its connection is closed rather than reused."""
    response.release()
