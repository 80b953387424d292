"""An HTTP client for streamed answers that hands over body bytes the moment they arrive.

Locust's FastHttp ``iter_content(n)`` and ``iter_lines()`` wait until n bytes (1 KiB) have piled up, which
delays a small first token until later tokens push it through and doubles the measured TTFT. This
client reads whatever the socket has, so a first token sent alone is seen when it arrives. It wraps
geventhttpclient (the library under Locust's FastHttpUser): one keep-alive connection per user.
"""

from __future__ import annotations

import errno
from urllib.parse import urljoin, urlsplit

import geventhttpclient.client
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPSocketPoolResponse

from core.tls import context_factory
from users.common.http_body import abandon
from users.common.http_failures import MAX_REDIRECTS, REDIRECT_LOOP

REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
"""Statuses whose Location a streamed POST follows (on the same host, still a POST with its body)."""

BLOCK_SIZE = 64 * 1024
"""Most bytes taken from the socket per read; a read returns as soon as any bytes are there."""

EMPTY_BODY_END = b"\r\nContent-Length: 0\r\n\r\n"
"""How geventhttpclient ends the head of a POST with an empty body; a kept head puts each body's length there."""

HEADS_KEPT = 16
"""Most request heads kept per connection (one per path and header set: a new sign-in token makes a new one)."""

SENT_AS_IS = frozenset(("content-length", "transfer-encoding", "expect"))
"""Headers that change how a body is sent: a request that sets one is made by geventhttpclient alone."""


class RedirectLoop(Exception):
    """More than MAX_REDIRECTS redirects for one streamed request."""


class StreamingHttpClient:
    """One keep-alive connection to the chatbot for streamed POSTs; certificates are verified unless insecure."""

    def __init__(self, base_url: str, timeout_s: float, insecure: bool = False) -> None:
        self.base_url = base_url
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
        self._heads: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[bytes, bytes]] = {}

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> HTTPSocketPoolResponse:
        """Send a POST and return as soon as the response headers are in; the body is read with read_chunk.

        A redirect to the same host is followed (at most MAX_REDIRECTS times: more raises RedirectLoop); one to
        another host is returned as it is, a 3xx failure.
        """
        target = self.base_path + path
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(target, body, headers)
            location = response.get("location")
            if response.status_code not in REDIRECT_STATUSES or not isinstance(location, str):
                return response
            redirected = urlsplit(urljoin(urljoin(self.base_url, target), location))
            if redirected.netloc != urlsplit(self.base_url).netloc:
                return response
            abandon(response)
            target = redirected.path + (f"?{redirected.query}" if redirected.query else "")
        raise RedirectLoop(REDIRECT_LOOP)

    def _send(self, target: str, body: bytes, headers: dict[str, str]) -> HTTPSocketPoolResponse:
        """One POST, its head written by geventhttpclient once per path and header set and kept (its request path
        merges and checks every header of every request: 4% of the CPU at 900 streams); sent as its ``request``
        sends a body of bytes, with the same failures (a POST is never sent twice)."""
        head = self._head(target, headers)
        if head is None:
            return self._client.post(target, body=body, headers=headers)
        start, end = head
        request = b"%b%d%b%b" % (start, len(body), end, body)
        client = self._client
        pool = client._connection_pool
        sock = pool.get_socket()
        try:
            sock.sendall(request)
        except OSError as error:
            if error.errno not in (errno.ECONNRESET, errno.EPIPE):
                pool.release_socket(sock)
                raise  # else the server may have answered before it closed (a 401 to a big body): read that
        except BaseException:  # a timeout or a stop mid-send: the connection is closed and the pool's slot freed
            pool.release_socket(sock)
            raise
        response_type = geventhttpclient.client.HTTPSocketPoolResponse  # as patched (plugins/setup/header_stamps.py)
        return response_type(sock, pool, block_size=client.block_size, method="POST", headers_type=client.headers_type)

    def _head(self, target: str, headers: dict[str, str]) -> tuple[bytes, bytes] | None:
        """The request head for ``target`` and ``headers``, split where the body's length goes; None when
        geventhttpclient must make the whole request (a header in SENT_AS_IS)."""
        key = (target, tuple(headers.items()))
        if (head := self._heads.get(key)) is not None:
            return head
        if any(name.lower() in SENT_AS_IS for name in headers):
            return None
        empty = self._client._build_request("POST", target, body=b"", headers=headers).encode("latin-1")
        if not empty.endswith(EMPTY_BODY_END):  # its last header is the length, as for any body
            return None
        if len(self._heads) >= HEADS_KEPT:
            self._heads.clear()
        head = self._heads[key] = (empty[: -len(EMPTY_BODY_END)] + b"\r\nContent-Length: ", b"\r\n\r\n")
        return head

    def close(self) -> None:
        self._client.close()
