"""Unit tests for the API presets' stream parsers (Anthropic Messages, OpenAI Responses) on recorded streams."""

from __future__ import annotations

import json

import pytest

from core.errors import InputError
from tests.users.llm.stream_bytes import DONE, assert_split_invariant, content, error, run, usage
from users.llm.api_presets import PRESETS, request_body, stream_parser
from users.llm.provider_parsers import AnthropicParser, ResponsesParser
from users.llm.stream_parsers import MALFORMED_JSON


def typed(*events: tuple[str, dict]) -> bytes:
    """An SSE body with an ``event:`` line before every message, as Anthropic and the Responses API send."""
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


def anthropic_delta(kind: str, key: str, text: str) -> tuple[str, dict]:
    return "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": kind, key: text}}


ANTHROPIC = typed(
    ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 25, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}}),
    anthropic_delta("thinking_delta", "thinking", "Let me see."),
    ("ping", {"type": "ping"}),
    anthropic_delta("signature_delta", "signature", "abc"),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    anthropic_delta("text_delta", "text", "Héllo"),
    ("ping", {"type": "ping"}),
    anthropic_delta("text_delta", "text", " 世界"),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 15}}),
    ("message_stop", {"type": "message_stop"}),
)


def test_anthropic_stream_in_any_cut() -> None:
    expected = [content("Let me see.", True), content("Héllo"), content(" 世界"), usage(15), DONE]
    assert_split_invariant(AnthropicParser, ANTHROPIC, expected)


def test_anthropic_error_event_is_named_after_its_type_and_message() -> None:
    body = typed(
        anthropic_delta("text_delta", "text", "Hi"),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )
    assert run(AnthropicParser(), [body]) == [content("Hi"), error("overloaded_error: Overloaded")]
    assert run(AnthropicParser(), [b"event: content_block_delta\ndata: {nope\n\n"]) == [error(MALFORMED_JSON)]


def responses_event(kind: str, **fields: object) -> tuple[str, dict]:
    return kind, {"type": kind, "sequence_number": 1, **fields}


RESPONSES = typed(
    responses_event("response.created", response={"status": "in_progress"}),
    responses_event("response.reasoning_summary_text.delta", delta="Thinking"),
    responses_event("response.reasoning_text.delta", delta=" hard"),
    responses_event("response.output_item.added", item={"type": "message"}),
    responses_event("response.output_text.delta", delta="Héllo"),
    responses_event("response.output_text.delta", delta=""),
    responses_event("response.output_text.delta", delta=" 世界"),
    responses_event("response.output_text.done", text="Héllo 世界"),
    responses_event("response.completed", response={"usage": {"input_tokens": 9, "output_tokens": 7}}),
)


def test_responses_stream_in_any_cut() -> None:
    expected = [content("Thinking", True), content(" hard", True), content("Héllo"), content(" 世界"), usage(7), DONE]
    assert_split_invariant(ResponsesParser, RESPONSES, expected)


def test_responses_failures_are_named() -> None:
    failed = typed(responses_event("response.failed", response={"error": {"code": "server_error", "message": "boom"}}))
    assert run(ResponsesParser(), [failed]) == [error("server_error: boom")]
    event = typed(responses_event("error", code="rate_limit_exceeded", message="slow down", param=None))
    assert run(ResponsesParser(), [event]) == [error("rate_limit_exceeded: slow down")]


def test_preset_bodies_follow_each_api() -> None:
    base = {"model": "m", "stream": True, "temperature": 0.5}
    question = [{"role": "user", "content": "hi"}]
    anthropic = request_body("anthropic", base, 0, "be brief", question)
    assert anthropic == {**base, "max_tokens": 1024, "system": "be brief", "messages": question}
    responses = request_body("responses", base, 50, "be brief", question)
    assert responses == {**base, "max_output_tokens": 50, "instructions": "be brief", "input": question}
    ollama = request_body("ollama", base, 50, "", question)
    assert ollama == {
        "model": "m",
        "stream": True,
        "options": {"num_predict": 50, "temperature": 0.5},
        "messages": question,
    }
    chat = request_body("chat", base, 0, "sys", question)
    assert chat["messages"] == [{"role": "system", "content": "sys"}, *question] and "max_tokens" not in chat
    assert PRESETS["anthropic"].headers == {"anthropic-version": "2023-06-01"}


def test_provider_formats_take_no_paths() -> None:
    with pytest.raises(InputError, match="--stream-text-path applies only"):
        stream_parser("anthropic", "delta.text", None)
    with pytest.raises(InputError, match="not known"):
        stream_parser("grpc", None, None)
