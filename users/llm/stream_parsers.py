"""Streamed-answer parsers: turn response-body bytes, as they arrive, into content/usage/done/error events.

A streaming user reads the body a line or a chunk at a time (split points are arbitrary: inside a
CRLF pair, inside a UTF-8 character), feeds each piece to a parser and timestamps the events it
gets back. Nothing here imports Locust or touches the network.

    parser = make_parser("openai")
    for chunk in body:                      # bytes, any split
        for event in parser.feed(chunk):    # list[StreamEvent], often empty
            ...                             # event.kind: "content" | "usage" | "done" | "error"
    for event in parser.close():            # end of body: flushes an unterminated last message/line
        ...

Events:

- ``content``: a non-empty piece of generated text (``text``); ``reasoning`` is true for a reasoning
  delta (OpenAI-style ``reasoning_content`` / ``reasoning``, Ollama ``message.thinking``). Empty deltas,
  role-only chunks and keep-alives yield nothing, so the first content event is the TTFT moment.
- ``usage``: the server's output-token count (``output_tokens``). Servers that report usage on every
  chunk (vLLM ``continuous_usage_stats``) give a running total: the last usage event wins.
- ``done``: the stream said it is finished (``[DONE]``, NDJSON ``done: true``, end of a text body).
  End of the body without ``done`` is not an error here; the caller sees the end itself.
- ``error``: the server reported an error in the stream, or a message could not be parsed (``text``
  says which). Parsing continues afterwards; the caller decides whether the answer failed.

One message may yield several events, always in the order content, usage, done.

Formats (``make_parser``): ``openai`` (chat and legacy completions SSE, as OpenAI, vLLM, SGLang, TGI),
``sse`` (any JSON-over-SSE with a dotted path to the text, e.g. ``delta.text`` for Anthropic),
``ndjson`` (one JSON object per line, Ollama style), ``text`` (raw chunked text).

Speed: lines are found with ``bytes.find``/``split`` on whole chunks and decoded once per completed
line batch, never per byte; an unfinished line waits in a list of pieces (no quadratic re-joins).
JSON is parsed by core/fast_json.py (orjson, with the standard library as the judge of what is malformed).
"""

from __future__ import annotations

import codecs
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

from core.errors import InputError
from core.fast_json import STRICT_BYTES, fast_loads, loads
from core.speedups import scan_openai
from users.llm.stream_framing import JsonPath, SSEDecoder

__all__ = [
    "STREAM_FORMATS",
    "JsonPath",
    "JsonSSEParser",
    "NDJSONParser",
    "OpenAIChatParser",
    "SSEDecoder",
    "StreamEvent",
    "StreamParser",
    "TextParser",
    "make_parser",
]

EventKind = Literal["content", "usage", "done", "error"]
Scanned = tuple[list[str], bool, int | None, bool]

STREAM_FORMATS = ("openai", "sse", "ndjson", "text")
"""Values accepted by ``--stream-format``."""

MALFORMED_JSON = "malformed JSON in stream"
"""Error text for a message or line that is not valid JSON."""

UNEXPECTED_SHAPE = "unexpected JSON shape in stream"
"""Error text for valid JSON that is not an object of the expected layout."""


@dataclass(slots=True)
class StreamEvent:
    """One thing a streamed answer told us: a content delta, a usage count, the end, or an error."""

    kind: EventKind
    text: str = ""
    """Content delta for ``content``; the message for ``error``; empty otherwise."""
    output_tokens: int | None = None
    """Output (completion) tokens reported by the server, for ``usage``."""
    reasoning: bool = False
    """True when a ``content`` event is a reasoning ("thinking") delta rather than answer text."""


class StreamParser(ABC):
    """What every format parser offers: ``feed`` bytes as they arrive, ``close`` at the end of the body."""

    scans = False
    """Whether ``scan`` can ever read a piece (the compiled OpenAI scan, core/_speedups.c)."""

    @abstractmethod
    def feed(self, data: bytes) -> list[StreamEvent]:
        """Take the next piece of the body; return the events it completed, in order."""

    @abstractmethod
    def close(self) -> list[StreamEvent]:
        """End of the body: return events from an unterminated last message or line (and ``done`` if implied)."""

    def scan(self, data: bytes) -> Scanned | None:
        """A shortcut for ``feed``: what the piece says as (answer texts, whether a reasoning delta came, the last
        usage count or None, whether the done marker came), or None when ``feed`` must read it."""
        return None

    def scannable(self) -> bool:
        """Whether the next piece may be read by the compiled OpenAI scan (core/_speedups.c) instead of ``feed``."""
        return False


def _error_text(data: str) -> str:
    """The message of an SSE ``error`` event: from its JSON if it has one, else the raw data."""
    try:
        obj = loads(data)
    except ValueError:
        return data.strip() or "error event in stream"
    message = _error_message(obj) if isinstance(obj, dict) else None
    return message or data.strip() or "error event in stream"


def _error_message(obj: dict) -> str | None:
    """The error a server put in a JSON chunk (``{"error": ...}``, vLLM ``{"object": "error"}``), else None."""
    error = obj.get("error")
    if error:
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    if obj.get("object") == "error":
        return str(obj.get("message") or "error in stream")
    return None


def _tokens(value: Any) -> int | None:
    """``value`` if it is a token count (an int, not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _SSEParser(StreamParser):
    """SSE framing plus a per-message handler that appends events to the output list."""

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._decode = self._decoder.feed

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Take the next piece of the body; return the events it completed, in order."""
        out: list[StreamEvent] = []
        for event, message in self._decode(data):
            self._on_message(event, message, out)
        if self._decoder.not_utf8:  # JSON is UTF-8: text decoded with U+FFFD in it would pass for an answer
            return [StreamEvent("error", MALFORMED_JSON)]
        return out

    def close(self) -> list[StreamEvent]:
        """End of the body: return events from an unterminated last message."""
        out: list[StreamEvent] = []
        for event, message in self._decoder.close():
            self._on_message(event, message, out)
        return out

    @abstractmethod
    def _on_message(self, event: str, data: str, out: list[StreamEvent]) -> None: ...


class OpenAIChatParser(_SSEParser):
    """Parser for OpenAI-compatible streaming (chat ``delta`` and legacy completions ``text``), with usage.

    ``data: [DONE]`` → done; ``choices[0].delta.content`` / ``reasoning_content`` / ``reasoning`` or
    ``choices[0].text`` → content; non-null ``usage.completion_tokens`` → usage; a non-null ``error``
    member, vLLM's ``{"object": "error", ...}`` or an ``event: error`` message → error.
    """

    def scan(self, data: bytes) -> Scanned | None:
        """Whole ``data:`` messages, a piece at a time, in C (core/_speedups.c) where it is built: the same events as
        ``feed`` at a fraction of the CPU; None (``feed`` reads the piece) for anything but whole one-line messages
        of plain chunks, usage and ``[DONE]`` (errors and malformed JSON included), or halfway through a message."""
        return scan_openai(data, fast_loads) if self.scannable() else None  # type: ignore[misc]

    scans = scan_openai is not None and STRICT_BYTES

    def scannable(self) -> bool:
        return self.scans and self._decoder.between_messages()

    def _on_message(self, event: str, data: str, out: list[StreamEvent]) -> None:
        if event == "error":
            out.append(StreamEvent("error", _error_text(data)))
            return
        try:  # JSON first: [DONE] costs one failed parse per stream instead of a compare per chunk
            obj = loads(data)
        except ValueError:
            stripped = data.strip()
            if stripped == "[DONE]":
                out.append(StreamEvent("done"))
            elif stripped:
                out.append(StreamEvent("error", MALFORMED_JSON))
            return
        try:
            choices = obj.get("choices")
            if choices:
                choice = choices[0]
                delta = choice.get("delta")
                if delta:
                    text = delta.get("reasoning_content") or delta.get("reasoning")
                    if text and isinstance(text, str):
                        out.append(StreamEvent("content", text, None, True))
                    text = delta.get("content")
                else:
                    text = choice.get("text")
                if text and isinstance(text, str):
                    out.append(StreamEvent("content", text))
            usage = obj.get("usage")
            if usage:
                tokens = _tokens(usage.get("completion_tokens"))
                if tokens is not None:
                    out.append(StreamEvent("usage", "", tokens))
            if not choices or "error" in obj:  # OpenRouter puts a mid-stream error next to its choices
                message = _error_message(obj)
                if message:
                    out.append(StreamEvent("error", message))
        except (AttributeError, TypeError, KeyError, IndexError):
            out.append(StreamEvent("error", UNEXPECTED_SHAPE))


class JsonSSEParser(_SSEParser):
    """Parser for any JSON-over-SSE stream, given the dotted path to the text delta in each message.

    ``done_data`` (default ``[DONE]``) as a message's whole data → done; ``text_path`` → content;
    ``reasoning_path`` → reasoning content; ``usage_path`` (an int) → usage; an ``event: error`` message or
    a top-level ``error`` → error. A message without the path yields nothing.
    """

    def __init__(
        self,
        text_path: str,
        usage_path: str | None = None,
        done_data: str = "[DONE]",
        reasoning_path: str | None = None,
    ) -> None:
        """Compile the paths; raise InputError for a bad one."""
        super().__init__()
        self._text = JsonPath(text_path, "--stream-text-path")
        self._usage = JsonPath(usage_path, "--stream-usage-path") if usage_path else None
        self._reasoning = JsonPath(reasoning_path, "reasoning_path") if reasoning_path else None
        self._done_data = done_data

    def _on_message(self, event: str, data: str, out: list[StreamEvent]) -> None:
        if event == "error":
            out.append(StreamEvent("error", _error_text(data)))
            return
        if data == self._done_data or data.strip() == self._done_data:
            out.append(StreamEvent("done"))
            return
        try:
            obj = loads(data)
        except ValueError:
            if data.strip():
                out.append(StreamEvent("error", MALFORMED_JSON))
            return
        _emit_json(obj, self._text, self._reasoning, self._usage, out)


def _emit_json(
    obj: Any, text_path: JsonPath, reasoning_path: JsonPath | None, usage_path: JsonPath | None, out: list
) -> bool:
    """Append the error, or the reasoning/content/usage events, that one parsed JSON object carries.

    Returns False when it was an error.
    """
    if isinstance(obj, dict):
        message = _error_message(obj)
        if message:
            out.append(StreamEvent("error", message))
            return False
    if reasoning_path is not None:
        text = reasoning_path.get(obj)
        if text and isinstance(text, str):
            out.append(StreamEvent("content", text, None, True))
    text = text_path.get(obj)
    if text and isinstance(text, str):
        out.append(StreamEvent("content", text))
    if usage_path is not None:
        tokens = _tokens(usage_path.get(obj))
        if tokens is not None:
            out.append(StreamEvent("usage", "", tokens))
    return True


class NDJSONParser(StreamParser):
    """Parser for newline-delimited JSON streams (Ollama ``/api/chat`` and ``/api/generate`` style).

    Each non-blank line is one JSON object: ``reasoning_path`` and ``text_path`` → content, ``usage_path``
    → usage, then a truthy ``done_path`` → done; a top-level ``error`` → error; a line that is not JSON
    → error. Lines end in LF or CRLF.
    """

    def __init__(
        self,
        text_path: str = "message.content",
        done_path: str = "done",
        usage_path: str | None = "eval_count",
        reasoning_path: str | None = "message.thinking",
    ) -> None:
        """Compile the paths; raise InputError for a bad one."""
        self._text = JsonPath(text_path, "--stream-text-path")
        self._done = JsonPath(done_path, "done_path")
        self._usage = JsonPath(usage_path, "--stream-usage-path") if usage_path else None
        self._reasoning = JsonPath(reasoning_path, "reasoning_path") if reasoning_path else None
        self._pending: list[bytes] = []

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Take the next piece of the body; return the events of the lines it completed, in order."""
        end = data.rfind(b"\n")
        if end < 0:
            if data:
                self._pending.append(data)
            return []
        if self._pending:
            self._pending.append(data)
            data = b"".join(self._pending)
            self._pending.clear()
            end = data.rfind(b"\n")
        if end + 1 < len(data):
            self._pending.append(data[end + 1 :])
        out: list[StreamEvent] = []
        for line in data[:end].split(b"\n"):
            self._on_line(line, out)
        return out

    def close(self) -> list[StreamEvent]:
        """End of the body: return the events of an unterminated last line (an error if it is cut short)."""
        out: list[StreamEvent] = []
        if self._pending:
            line = b"".join(self._pending)
            self._pending.clear()
            self._on_line(line, out)
        return out

    def _on_line(self, line: bytes, out: list[StreamEvent]) -> None:
        try:
            obj = loads(line)
        except ValueError:
            if line.strip():
                out.append(StreamEvent("error", MALFORMED_JSON))
            return
        if _emit_json(obj, self._text, self._reasoning, self._usage, out) and self._done.get(obj):
            out.append(StreamEvent("done"))


class TextParser(StreamParser):
    """Parser for a raw chunked text body: every non-empty decoded piece is content; the end of the body is done."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Take the next piece of the body; return one content event for the text it completed, if any."""
        text = self._decoder.decode(data)
        return [StreamEvent("content", text)] if text else []

    def close(self) -> list[StreamEvent]:
        """End of the body: any bytes of an unfinished character (as U+FFFD), then done."""
        text = self._decoder.decode(b"", True)
        return [StreamEvent("content", text), StreamEvent("done")] if text else [StreamEvent("done")]


def make_parser(stream_format: str, text_path: str | None = None, usage_path: str | None = None) -> StreamParser:
    """Build the parser for one response body from the stream options; raise InputError on a bad one.

    The arguments are ``--stream-format``, ``--stream-text-path`` and ``--stream-usage-path``; empty paths
    count as not given. ``openai`` and ``text`` take no paths; ``sse`` needs ``text_path``; ``ndjson``
    defaults to Ollama chat (``message.content``, usage ``eval_count``).
    """
    name = (stream_format or "").strip().lower()
    if name not in STREAM_FORMATS:
        raise InputError(f"--stream-format {stream_format!r} is not known; use one of: {', '.join(STREAM_FORMATS)}")
    if name in ("openai", "text") and (text_path or usage_path):
        option = "--stream-text-path" if text_path else "--stream-usage-path"
        raise InputError(f"{option} applies only to --stream-format sse or ndjson, not {name}; drop it")
    if name == "openai":
        return OpenAIChatParser()
    if name == "text":
        return TextParser()
    if name == "sse":
        if not text_path:
            raise InputError(
                "--stream-format sse needs --stream-text-path (the JSON path to the text, e.g. delta.text)"
            )
        return JsonSSEParser(text_path, usage_path or None)
    return NDJSONParser(text_path or "message.content", usage_path=usage_path or "eval_count")
