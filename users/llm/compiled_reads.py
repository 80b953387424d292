"""When a streamed answer's reads can be taken in C (core/_speedups.c ``ChunkedStream``) instead of Python.

Each token of a streamed answer is one read: the system call, the HTTP parser's chunk framing, the SSE framing, the
JSON and the filing. In Python that is ~10 frames per token; ``ChunkedStream`` does the read, follows the chunk
framing, reads whole OpenAI messages and files them into the AnswerReader in one call (Python files only what ends
or bounds the answer: the done marker, the first token it waits for, the size caps). It needs to know where the
chunk framing stands when it takes over, so it follows it from the body's first byte: the bytes the header read took
are kept (plugins/setup/header_stamps.py) and the body's part of them is where it starts. Anything it does not know
(a message split across reads, an error, an extension or a trailer) goes to the Python parsers as before.
"""

from __future__ import annotations

from typing import Any

from core.fast_json import fast_loads
from core.speedups import ChunkedStream
from users.common.arrival_clock import MAX_AGE_S, STAMPS_AVAILABLE, is_plain
from users.common.http_answers import AnswerSettings
from users.llm.stream_parsers import StreamParser

HEADERS_END = b"\r\n\r\n"


def compiled_reads(response: Any, parser: StreamParser, limits: AnswerSettings, max_bytes_without_event: int) -> Any:
    """A ``ChunkedStream`` for this answer's body, or None where the Python reads must do (not built, not a plain
    stamped socket, not a chunked identity body, a parser that reads other formats, headers it cannot place). It files
    a read into the AnswerReader itself where ``_take`` would only file it, within the same bounds."""
    sock = response._sock
    if ChunkedStream is None or not STAMPS_AVAILABLE or sock is None or not is_plain(sock):
        return None
    if not parser.scans or response.message_complete or response._body_buffer:
        return None
    if not plain_chunks(response):
        return None
    head = body_start(getattr(response, "header_reads", None))  # kept by plugins/setup/header_stamps.py
    if head is None:
        return None
    return reads_in_c(sock.fileno(), response, parser, limits, max_bytes_without_event, head)


def plain_chunks(response: Any) -> bool:
    """Whether the answer's body is chunked and not encoded, told once (a header sent twice comes as a list: the
    Python reads judge such an answer)."""
    transfer, encoding = response.get("transfer-encoding"), response.get("content-encoding") or "identity"
    if not isinstance(transfer, str) or not isinstance(encoding, str) or response.get("content-length") is not None:
        return False
    return transfer.strip().lower() == "chunked" and encoding.strip().lower() == "identity"


def reads_in_c(
    fd: int, response: Any, parser: StreamParser, limits: AnswerSettings, max_bytes_without_event: int, head: bytes
) -> Any:
    """The ``ChunkedStream`` of an answer whose socket is ``fd``, its body's first bytes ``head`` (already parsed by
    the response's HTTP parser, as the last chunk will be)."""
    reads = ChunkedStream(
        fd,
        response.block_size,
        MAX_AGE_S,
        fast_loads,
        response.feed,
        head,
        max_answer_bytes=limits.max_answer_bytes,
        max_bytes_without_event=max_bytes_without_event,
    )
    reads.scan = parser.scannable()  # not before the body's first message has been read by the parser
    return reads


def body_start(header_reads: list[bytes] | None) -> bytes | None:
    """The body bytes among what the header read took, or None when the headers cannot be placed for sure (an
    interim 1xx answer first, line ends other than CRLF, bytes left by an earlier answer)."""
    if not header_reads:
        return None
    taken = b"".join(header_reads)
    end = taken.find(HEADERS_END)
    if end < 0 or not taken.startswith(b"HTTP/1.1 2"):
        return None
    headers = taken[:end]
    if headers.count(b"\n") != headers.count(b"\r\n"):
        return None
    return taken[end + len(HEADERS_END) :]
