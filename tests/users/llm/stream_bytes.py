"""Stream bodies and expected events shared by the stream parser tests: every way to cut a body, SSE frames."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from users.llm.stream_parsers import (
    SSEDecoder,
    StreamEvent,
    StreamParser,
)


def chunkings(body: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """The same body cut every way that matters: whole, byte by byte, by lines, and at every split point."""
    yield "whole", [body]
    yield "bytes", [body[i : i + 1] for i in range(len(body))]
    yield "lines", body.splitlines(keepends=True)
    for cut in range(1, len(body)):
        yield f"split@{cut}", [body[:cut], body[cut:]]


def run(parser: StreamParser | SSEDecoder, pieces: list[bytes]) -> list:
    """Feed every piece, then close; all the events (or messages) in order."""
    out = []
    for piece in pieces:
        out.extend(parser.feed(piece))
    out.extend(parser.close())
    return out


def assert_split_invariant(make: Callable[[], StreamParser | SSEDecoder], body: bytes, expected: list) -> None:
    """Every way of cutting ``body`` gives exactly ``expected``."""
    for name, pieces in chunkings(body):
        assert run(make(), pieces) == expected, name


def content(text: str, reasoning: bool = False) -> StreamEvent:
    return StreamEvent("content", text, None, reasoning)


def usage(tokens: int) -> StreamEvent:
    return StreamEvent("usage", "", tokens)


DONE = StreamEvent("done")


def error(text: str) -> StreamEvent:
    return StreamEvent("error", text)


def sse(*payloads: object, eol: bytes = b"\n") -> bytes:
    """An SSE body with one ``data:`` message per payload (dicts become compact JSON, as vLLM sends them)."""
    out = b""
    for payload in payloads:
        data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        out += b"data: " + data.encode() + eol + eol
    return out


def chat_chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None, **extra) -> dict:
    """A vLLM-style chat.completion.chunk."""
    chunk = {
        "id": "chatcmpl-b7c3f1e2a9d84c55",
        "object": "chat.completion.chunk",
        "created": 1718000000,
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = usage
    chunk.update(extra)
    return chunk


USAGE = {"prompt_tokens": 17, "completion_tokens": 5, "total_tokens": 22}

# A full chat stream as vLLM sends it with stream_options.include_usage: role-only first chunk,
# multi-byte content, an empty delta, a finish chunk, a usage-only last chunk, [DONE].
