"""What the probe before the load needs of a streamed answer: its first bytes, and which --stream-format they fit.

A stream in another format than --stream-format fails every answer (``no content in the answer``, ``answer is
not JSON``, …); the probe names what arrived and the format that fits, before the load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from users.common.http_failures import NOT_JSON
from users.llm.stream_parsers import MALFORMED_JSON, UNEXPECTED_SHAPE, StreamParser

FIRST_BYTES = 4096
"""Bytes of a stream the probe keeps: enough for a whole first line or event."""

QUOTED_CHARS = 60
"""Characters of a stream's start a probe's message quotes."""

SSE_FIELDS = ("data:", "event:", "id:", "retry:", ":")

FORMAT_FAILURES = (
    "no content in the answer",
    "stream ended before the server said it was done",
    NOT_JSON,
    MALFORMED_JSON,
    UNEXPECTED_SHAPE,
)
"""Failure names (their start) a stream in another format ends in; an error event the server sent is not one, nor
an endless line (``no event in 1 MB of stream``)."""


def sniffed_format(first_bytes: bytes) -> str | None:
    """The --stream-format a stream's start fits (``json`` for one JSON answer: not a stream), or None when no
    whole event or line is there to tell."""
    text = first_bytes.decode("utf-8", "replace").lstrip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    if lines[0].startswith(SSE_FIELDS):
        for line in lines:
            if line.startswith("data:"):
                data = _json(line[5:].strip())
                if isinstance(data, dict):
                    return _typed_format(data) or ("openai" if "choices" in data or "error" in data else "sse")
        return "sse" if "\n\n" in text.replace("\r\n", "\n") else None  # a whole event, of text
    if lines[0].startswith("{"):
        first = _json(lines[0])
        if isinstance(first, dict):
            # One object per line is NDJSON (Ollama's says in each line whether it is done); else one JSON answer.
            return "ndjson" if len(lines) > 1 or "done" in first else "json"
        return "json" if isinstance(_json(text), dict) else None  # pretty-printed, or a line not yet whole
    return "text"


ANTHROPIC_EVENTS = frozenset({"message_start", "content_block_start", "content_block_delta", "ping", "message_delta"})


def _typed_format(data: dict) -> str | None:
    """A provider's own typed SSE events: Anthropic's Messages or OpenAI's Responses stream."""
    kind = str(data.get("type", ""))
    if kind.startswith("response."):
        return "openai-responses"
    return "anthropic" if kind in ANTHROPIC_EVENTS else None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass
class StreamTap:
    """Keeps the first bytes of the probe's answer: its parser is the real one, fed through ``feed`` here."""

    first_bytes: bytearray = field(default_factory=bytearray)

    def settings(self, real: Any) -> Any:
        """``real`` stream settings whose parser() hands the tap every byte first."""
        return _TappedSettings(real, self)


@dataclass
class _TappedSettings:
    real: Any
    tap: StreamTap

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def parser(self) -> Any:
        return _TappedParser(self.real.parser(), self.tap)


@dataclass
class _TappedParser(StreamParser):
    """The real parser, its first bytes seen by the tap. It never scans (StreamParser's defaults): every piece goes
    through ``feed``, where the tap sees it."""

    real: Any
    tap: StreamTap

    def feed(self, data: bytes) -> Any:
        room = FIRST_BYTES - len(self.tap.first_bytes)
        if room > 0:
            self.tap.first_bytes += data[:room]
        return self.real.feed(data)

    def close(self) -> Any:
        return self.real.close()


def wrong_format(failure: str | None, first_bytes: bytes, stream_format: str, text_path: str) -> str | None:
    """What to say when a probe's stream failed because it is not in ``stream_format``, else None."""
    if not failure or not first_bytes or not failure.startswith(FORMAT_FAILURES):
        return None
    quoted = first_bytes.decode("utf-8", "replace")[:QUOTED_CHARS]
    begins = f"it begins with {quoted!r}"
    fits = sniffed_format(first_bytes)
    if fits == "json":
        return f"--stream-format {stream_format}: the answer is one JSON object, not a stream ({begins})"
    if fits and fits != stream_format and stream_format != "text":
        return f"the stream is not --stream-format {stream_format}: {begins}; try --stream-format {fits}"
    if fits == stream_format and text_path and failure == "no content in the answer":
        return f"--stream-text-path {text_path!r} found no text in the stream; {begins}"
    return None
