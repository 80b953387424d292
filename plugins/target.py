"""Checking that the chatbot under test answers at all; free of Locust imports so scripts can use it too."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from users.errors import InputError

HOST_CHECK_TIMEOUT_S = 3.0
"""How long the check that the target answers may take."""

DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def check_host(url: str, timeout_s: float = HOST_CHECK_TIMEOUT_S) -> None:
    """Raise InputError unless ``url`` is an http(s)/ws(s) URL whose host accepts a TCP connection."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InputError(f"--host: {url!r} is not a URL like http://127.0.0.1:8080")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise InputError(f"--host: {url!r} has a bad port") from None
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            pass
    except OSError as error:
        reason = (error.strerror or type(error).__name__).lower()
        hint = "is the chatbot running? Check --host or CHATBOT_URL"
        raise InputError(f"cannot reach {url} ({reason}); {hint}") from None
