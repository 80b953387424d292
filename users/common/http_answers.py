"""An HTTP exchange a hostile target cannot stretch: bounded in size (--max-answer-mb) and in time (--request-timeout
from connect to last byte, headers included), for the REST, login and health requests.

geventhttpclient's own timeout is per socket read, so a server dripping one byte a second never trips it; here
one deadline covers the whole exchange. The body is read as it arrives (Locust's ``stream=True``) and never
past the cap: over it the exchange fails as ``answer over 16 MB`` and the connection is dropped.
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import brotli
import gevent
from geventhttpclient.response import HTTPParseError

from core.errors import InputError
from core.settings import Settings, setting
from users.common import records
from users.common.http_body import AnswerTooLarge, UnknownEncoding, abandon, read_body
from users.common.http_failures import answer_over, response_failure

MAX_ANSWER_MB_LIMIT = 4096
"""The largest --max-answer-mb accepted: one answer may not take more than 4 GB of the generator's memory."""


@dataclass(frozen=True)
class AnswerSettings(Settings):
    """How much of an HTTP answer is read, and whether a 429's Retry-After is obeyed (every HTTP user)."""

    max_answer_mb: int = setting(
        16,
        "Largest answer read, in MB (a REST or health answer, a whole streamed answer); "
        "a larger one fails as 'answer over N MB' and its connection is dropped",
    )
    honor_retry_after: bool = setting(
        False,
        "After an HTTP 429, wait as long as its Retry-After asks (at most 60 s, never past the end of the test) "
        "before the user's next question; off by default, so a stress test keeps its pressure",
    )

    def check(self) -> None:
        if not 1 <= self.max_answer_mb <= MAX_ANSWER_MB_LIMIT:
            raise InputError(f"--max-answer-mb: must be 1 to {MAX_ANSWER_MB_LIMIT} (MB), got {self.max_answer_mb}")

    @property
    def max_answer_bytes(self) -> int:
        return self.max_answer_mb << 20

    @property
    def over_cap(self) -> str:
        """The failure name of an answer over the cap."""
        return answer_over(self.max_answer_mb)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register --max-answer-mb and --honor-retry-after."""
    AnswerSettings.add_arguments(parser)


def check_options(options: Any) -> None:
    """Raise InputError for a bad answer option."""
    AnswerSettings.read(options)


@contextmanager
def bounded_request(
    client: Any, method: str, path: str, timeout_s: float, limits: AnswerSettings, **kwargs: Any
) -> Iterator[Any]:
    """Locust's ``client.request(method, path, catch_response=True, **kwargs)``, its answer read within the limits.

    Yields the response with its body read (``response.content``) and ``response.failure_name`` set: the
    status's or the connection's failure, ``timeout`` past ``timeout_s``, the cap's name, else None. The
    response time counts to the arrival of the last byte (the kernel's stamp, not the late read of a busy loop);
    the server's ``X-Request-Id`` goes with the request event (its row in requests.csv).
    """
    started = time.perf_counter()
    deadline = gevent.Timeout(timeout_s)  # raised inside geventhttpclient, it comes back as a "timeout" response
    deadline.start()
    try:
        with client.request(method, path, stream=True, catch_response=True, **kwargs) as response:
            response.failure_name, ended = _read_answer(response, limits, deadline)
            deadline.cancel()
            meta = response.request_meta
            meta["response_time"] = (max(ended, started) - started) * 1000
            if server_id := request_id(response.headers or {}):
                meta["context"] = {**(meta.get("context") or {}), records.REQUEST_ID: server_id}
            yield response
    finally:
        deadline.cancel()


def _read_answer(response: Any, limits: AnswerSettings, deadline: gevent.Timeout) -> tuple[str | None, float]:
    """The answer's failure name (None if it has none) and ``time.perf_counter()`` of its end: when its last bytes
    arrived (users/common/http_body.py), the clock now for an answer that failed or never came."""
    failure = response_failure(response)
    raw = getattr(response, "stream", None)  # geventhttpclient's response under Locust's; None when none came
    if raw is None:  # no answer at all (refused, reset, the deadline during the headers, a redirect loop)
        return failure, time.perf_counter()
    try:
        body, arrived = read_body(raw, limits.max_answer_bytes)
    except gevent.Timeout as error:
        if error is not deadline:
            raise
        body_failure = "timeout"
    except AnswerTooLarge:
        body_failure = limits.over_cap
    except UnknownEncoding:
        body_failure = "answer in an unknown encoding"
    except (zlib.error, brotli.error):
        body_failure = "answer cannot be decompressed"
    except (OSError, HTTPParseError):
        body_failure = "answer cut short"
    else:
        response._cached_content = body
        response.request_meta["response_length"] = len(body)
        return failure, arrived
    abandon(raw)
    response._cached_content = b""
    return failure or body_failure, time.perf_counter()


MAX_REQUEST_ID_CHARS = 128
"""The longest server request id kept (requests.csv): a hostile target's 80 KB header must not fill the disk."""


def request_id(headers: Any) -> str:
    """The server's id of the exchange (``X-Request-Id``), at most MAX_REQUEST_ID_CHARS; "" if it sent none."""
    value = headers.get("x-request-id")
    return value[:MAX_REQUEST_ID_CHARS] if isinstance(value, str) else ""


def json_answer(response: Any) -> Any:
    """The body parsed as JSON, which must be UTF-8 (or UTF-16/32, as RFC 8259 allows); ValueError if it is not."""
    return json.loads(response.content or b"")
