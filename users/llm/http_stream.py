"""An HTTP client for streamed answers that hands over body bytes the moment they arrive.

Locust's FastHttp ``iter_content(n)`` and ``iter_lines()`` wait until n bytes (1 KiB) have piled up, which
delays a small first token until later tokens push it through and doubles the measured TTFT. This
client reads whatever the socket has, so a first token sent alone is seen when it arrives. It wraps
geventhttpclient (the library under Locust's FastHttpUser): one keep-alive connection per user.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPSocketPoolResponse

from core.tls import context_factory
from users.common.http_body import abandon
from users.common.http_failures import MAX_REDIRECTS, REDIRECT_LOOP

REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
"""Statuses whose Location a streamed POST follows (on the same host, still a POST with its body)."""

BLOCK_SIZE = 64 * 1024
"""Most bytes taken from the socket per read; a read returns as soon as any bytes are there."""


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

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> HTTPSocketPoolResponse:
        """Send a POST and return as soon as the response headers are in; the body is read with read_chunk.

        A redirect to the same host is followed (at most MAX_REDIRECTS times: more raises RedirectLoop); one to
        another host is returned as it is, a 3xx failure.
        """
        target = self.base_path + path
        for _ in range(MAX_REDIRECTS + 1):
            response = self._client.post(target, body=body, headers=headers)
            location = response.get("location")
            if response.status_code not in REDIRECT_STATUSES or not isinstance(location, str):
                return response
            redirected = urlsplit(urljoin(urljoin(self.base_url, target), location))
            if redirected.netloc != urlsplit(self.base_url).netloc:
                return response
            abandon(response)
            target = redirected.path + (f"?{redirected.query}" if redirected.query else "")
        raise RedirectLoop(REDIRECT_LOOP)

    def close(self) -> None:
        self._client.close()
