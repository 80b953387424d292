"""Clear, stable names for failed HTTP exchanges, shared by every HTTP-based user.

Locust groups failures by their message, so names never contain variable parts such as durations or
ids: "HTTP 429 Too Many Requests", "timeout", "connection refused", "empty answer".
"""

from __future__ import annotations

import socket
from http import HTTPStatus
from typing import Any

from gevent import Timeout as GeventTimeout

MAX_REDIRECTS = 10
"""Redirects an HTTP user follows for one exchange; one more is a ``redirect loop``."""

REDIRECT_LOOP = "redirect loop"
"""The failure name of an exchange redirected more than MAX_REDIRECTS times (the WebSocket users say the same)."""

NOT_JSON = "answer is not JSON"
"""The failure name of a reply that is not JSON (or not UTF-8) where JSON is expected, in every HTTP user."""


def answer_over(cap_mb: int) -> str:
    """The failure name of an answer larger than the --max-answer-mb cap, e.g. ``answer over 16 MB``."""
    return f"answer over {cap_mb} MB"


def status_failure(status: int) -> str | None:
    """The failure name for a non-2xx status, or None when the status is a success."""
    if 200 <= status < 300:
        return None
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "unknown status"
    return f"HTTP {status} {phrase}"


def connection_failure(error: BaseException) -> str:
    """The failure name for an exchange that got no HTTP answer at all."""
    if "Redirection limit reached" in str(error):  # geventhttpclient's RetriesExceeded after max_redirects
        return REDIRECT_LOOP
    original = getattr(error, "original", None)  # geventhttpclient wraps the real cause in RetriesExceeded
    if isinstance(original, BaseException):
        error = original
    if isinstance(error, TimeoutError | socket.timeout | GeventTimeout):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    name = type(error).__name__
    if "Timeout" in name:
        return "timeout"
    if "Closed" in name:
        return "connection closed early"
    return f"connection error ({name})"


def response_failure(response: Any) -> str | None:
    """The failure name for a Locust FastHttp response that is not a success, else None."""
    error = getattr(response, "error", None)
    if not response.status_code:
        return connection_failure(error) if error else "no response"
    failure = status_failure(response.status_code)
    if failure is None:  # headers said yes, but the body may have been cut short or outlived --request-timeout
        body_error = (getattr(response, "request_meta", None) or {}).get("exception")
        if isinstance(body_error, BaseException):
            name = connection_failure(body_error)
            return name if name == "timeout" else "answer cut short"
    return failure
