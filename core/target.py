"""Checking that the chatbot under test answers at all; free of Locust imports so scripts can use it too."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from core.errors import InputError
from core.tls import client_context

HOST_CHECK_TIMEOUT_S = 3.0
"""How long the check that the target answers may take."""

DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
TLS_SCHEMES = ("https", "wss")


def shown_url(url: str) -> str:
    """A URL as outputs may show it: credentials in it (``http://bob:pw@host``) become ``***``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def check_host(url: str, timeout_s: float = HOST_CHECK_TIMEOUT_S, verify_certificate: bool = False) -> None:
    """Raise InputError unless ``url`` is an http(s)/ws(s) URL whose host accepts a TCP connection.

    With ``verify_certificate``, an https/wss host must also complete a TLS handshake with a certificate
    that is trusted and names the host, as the users' clients will demand.
    """
    parts, url = urlsplit(url), shown_url(url)  # every message below shows the URL without its credentials
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InputError(f"--host: {url!r} is not a URL like http://127.0.0.1:8080")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise InputError(f"--host: {url!r} has a bad port") from None
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s) as sock:
            if verify_certificate and parts.scheme in TLS_SCHEMES:
                _check_certificate(sock, parts.hostname, url)
    except OSError as error:
        reason = (error.strerror or type(error).__name__).lower()
        hint = "is the chatbot running? Check --host or CHATBOT_URL"
        raise InputError(f"cannot reach {url} ({reason}); {hint}") from None


def _check_certificate(sock: socket.socket, hostname: str, url: str) -> None:
    try:
        with client_context().wrap_socket(sock, server_hostname=hostname):
            pass
    except ssl.SSLCertVerificationError as error:
        reason = error.verify_message or error.reason or "not trusted"
        raise InputError(
            f"--host {url}: TLS certificate not trusted ({reason}); fix it, or pass --insecure to skip the check"
        ) from None
    except ssl.SSLError as error:
        reason = error.reason or str(error)
        raise InputError(f"--host {url}: TLS handshake failed ({reason}); does the target speak https?") from None
