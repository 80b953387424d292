"""Parsers for the providers' own typed-SSE streams: Anthropic Messages and the OpenAI Responses API.

Both name every message with an ``event:`` line (the JSON's ``type`` says the same), so the parser reads the
name and takes only what it needs: answer and reasoning deltas (TTFT and TTFO), the usage count, the end and
errors. Anything else (lifecycle events, ``ping`` keep-alives, tool-call deltas) yields nothing. Events come out
as users.llm.stream_parsers describes them; framing is SSEDecoder's.
"""

from __future__ import annotations

from typing import Any

from core.fast_json import loads
from users.llm.stream_parsers import MALFORMED_JSON, UNEXPECTED_SHAPE, StreamEvent, _SSEParser, _tokens


def _load(data: str, out: list[StreamEvent]) -> dict[str, Any] | None:
    """One message's JSON object, or None after appending the error that says why not (nothing for no data)."""
    try:
        obj = loads(data)
    except ValueError:
        if data.strip():
            out.append(StreamEvent("error", MALFORMED_JSON))
        return None
    if not isinstance(obj, dict):
        out.append(StreamEvent("error", UNEXPECTED_SHAPE))
        return None
    return obj


def _named_error(error: Any, fallback: str) -> str:
    """``type: message`` of a provider's error object (``{"type": "overloaded_error", "message": ...}``)."""
    if not isinstance(error, dict):
        return str(error) if error else fallback
    kind = error.get("type") or error.get("code")
    message = error.get("message")
    text = ": ".join(str(part) for part in (kind, message) if part)
    return text or fallback


class AnthropicParser(_SSEParser):
    """Anthropic Messages streaming (``POST /v1/messages``).

    ``content_block_delta`` with ``text_delta`` → content, ``thinking_delta`` → reasoning content;
    ``message_delta`` ``usage.output_tokens`` (cumulative) → usage; ``message_stop`` → done; ``error`` →
    error named ``<error type>: <message>``; ``ping``, ``message_start``, block start/stop → nothing.
    """

    def _on_message(self, event: str, data: str, out: list[StreamEvent]) -> None:
        if event == "ping":
            return
        obj = _load(data, out)
        if obj is None:
            return
        kind = event or obj.get("type")
        try:
            if kind == "content_block_delta":
                delta = obj["delta"]
                if delta.get("type") == "text_delta":
                    text, reasoning = delta.get("text"), False
                elif delta.get("type") == "thinking_delta":
                    text, reasoning = delta.get("thinking"), True
                else:
                    return  # input_json_delta, signature_delta: not text
                if text and isinstance(text, str):
                    out.append(StreamEvent("content", text, None, reasoning))
            elif kind == "message_delta":
                tokens = _tokens((obj.get("usage") or {}).get("output_tokens"))
                if tokens is not None:
                    out.append(StreamEvent("usage", "", tokens))
            elif kind == "message_stop":
                out.append(StreamEvent("done"))
            elif kind == "error":
                out.append(StreamEvent("error", _named_error(obj.get("error"), "error event in stream")))
        except (AttributeError, TypeError, KeyError):
            out.append(StreamEvent("error", UNEXPECTED_SHAPE))


RESPONSES_REASONING = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
"""Responses API events that carry reasoning text (TTFO, not TTFT)."""


class ResponsesParser(_SSEParser):
    """OpenAI Responses API streaming (``POST /v1/responses``): typed events, no ``[DONE]``.

    ``response.output_text.delta`` → content; reasoning (summary) text deltas → reasoning content;
    ``response.completed`` / ``response.incomplete`` → usage (``response.usage.output_tokens``), then done;
    ``response.failed`` → error from ``response.error``; ``error`` → error named ``<code>: <message>``.
    """

    def _on_message(self, event: str, data: str, out: list[StreamEvent]) -> None:
        obj = _load(data, out)
        if obj is None:
            return
        kind = event or obj.get("type")
        try:
            if kind == "response.output_text.delta" or kind in RESPONSES_REASONING:
                text = obj.get("delta")
                if text and isinstance(text, str):
                    out.append(StreamEvent("content", text, None, kind in RESPONSES_REASONING))
            elif kind in ("response.completed", "response.incomplete"):
                usage = (obj.get("response") or {}).get("usage") or {}
                tokens = _tokens(usage.get("output_tokens"))
                if tokens is not None:
                    out.append(StreamEvent("usage", "", tokens))
                out.append(StreamEvent("done"))
            elif kind == "response.failed":
                error = (obj.get("response") or {}).get("error")
                out.append(StreamEvent("error", _named_error(error, "response failed")))
            elif kind == "error":
                out.append(
                    StreamEvent(
                        "error",
                        _named_error(
                            obj.get("error") or {"code": obj.get("code"), "message": obj.get("message")},
                            "error event in stream",
                        ),
                    )
                )
        except (AttributeError, TypeError, KeyError):
            out.append(StreamEvent("error", UNEXPECTED_SHAPE))
