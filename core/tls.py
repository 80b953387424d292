"""One TLS policy for every client (HTTP, streaming, WebSocket, audio, the check before the start).

Certificates of https/wss targets are verified against the system's CAs (including ``SSL_CERT_FILE`` /
``SSL_CERT_DIR``) and certifi's bundle, so a CA the user installed works the same for every client.
``--insecure`` turns verification off for all of them. Free of Locust imports so scripts can use it.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import certifi

from core.options import require_positive
from core.settings import Settings, setting


def client_context(insecure: bool = False, cafile: str | None = None, **_kwargs: Any) -> ssl.SSLContext:
    """A client TLS context: the system's CAs, certifi's and ``cafile``; no checks at all when insecure.

    Accepts (and ignores) the other keyword arguments geventhttpclient passes to its context factory.
    Contexts are shared: loading the CA bundles takes ~40 ms, too long to repeat for every connection.
    """
    return _shared_context(insecure, cafile)


@functools.cache
def _shared_context(insecure: bool, cafile: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()  # under gevent's monkey patching this is gevent's cooperative ssl
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    for bundle in dict.fromkeys((cafile, certifi.where())):
        if bundle:
            context.load_verify_locations(cafile=bundle)
    return context


@functools.cache
def context_factory(insecure: bool) -> Callable[..., ssl.SSLContext]:
    """The ``ssl_context_factory`` for geventhttpclient and Locust's FastHttpUser (one per policy, shared)."""
    return functools.partial(client_context, insecure)


@functools.cache
def websocket_sslopt(insecure: bool) -> dict[str, Any]:
    """websocket-client's ``sslopt`` for wss:// URLs, with the same policy (shared: websocket-client copies it)."""
    return {"context": client_context(insecure)}


@dataclass(frozen=True)
class ConnectionSettings(Settings):
    """How every client connects: the TLS policy and how long a request may take (run options)."""

    insecure: bool = setting(
        False,
        "Do not verify the TLS certificate of an https/wss target (e.g. a self-signed test server)",
        web_ui=False,  # decided at start, where the target's certificate is checked and the warning logged
    )
    request_timeout: float = setting(60.0, "Seconds before a request times out", web_ui=True)

    def check(self) -> None:
        require_positive(self.request_timeout, "--request-timeout")


def insecure_option(options: Any) -> bool:
    """Whether the run was told --insecure."""
    return ConnectionSettings.read(options).insecure
