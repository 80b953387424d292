"""API presets (``--api NAME``): the path, request body, headers and stream parser of each chat API, in one table.

A preset only sets defaults: an explicit ``--stream-path`` or ``--stream-format`` still wins, and so does an
explicit ``--api-key-header``. Without ``--api`` the streaming user speaks OpenAI Chat Completions as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import InputError
from users.llm.provider_parsers import AnthropicParser, ResponsesParser
from users.llm.stream_parsers import STREAM_FORMATS, StreamParser, make_parser

OPENAI_KEY_VARIABLES = ("CHATBOT_API_KEY", "OPENAI_API_KEY")
"""Environment variables (or .env entries) that provide the API key when --api-key is not given."""

ANTHROPIC_MAX_TOKENS = 1024
"""max_tokens sent to Anthropic when --max-tokens is 0: the Messages API requires one."""


@dataclass(frozen=True)
class ApiPreset:
    """How one chat API is spoken: where to send, what to send, and how its stream reads."""

    path: str
    stream_format: str
    body: str
    """Request body shape: ``chat`` (OpenAI messages), ``anthropic``, ``responses`` or ``ollama``."""
    headers: Mapping[str, str] = field(default_factory=dict)
    key_header: str = ""
    """Where --api-key goes unless --api-key-header says otherwise (empty: ``Authorization: Bearer``)."""
    key_variables: tuple[str, ...] = OPENAI_KEY_VARIABLES


PRESETS: dict[str, ApiPreset] = {
    "openai-chat": ApiPreset("/v1/chat/completions", "openai", "chat"),
    "openai-responses": ApiPreset("/v1/responses", "openai-responses", "responses"),
    "anthropic": ApiPreset(
        "/v1/messages",
        "anthropic",
        "anthropic",
        {"anthropic-version": "2023-06-01"},
        "x-api-key",
        ("CHATBOT_API_KEY", "ANTHROPIC_API_KEY"),
    ),
    "ollama": ApiPreset("/api/chat", "ndjson", "ollama"),
    "sse": ApiPreset("/v1/chat/completions", "sse", "chat"),
    "ndjson": ApiPreset("/v1/chat/completions", "ndjson", "chat"),
    "text": ApiPreset("/v1/chat/completions", "text", "chat"),
}
"""Every ``--api`` value; ``sse``, ``ndjson`` and ``text`` are the generic formats with an OpenAI-style body."""


PROVIDER_PARSERS = {"anthropic": AnthropicParser, "openai-responses": ResponsesParser}
"""Stream formats with a provider's own typed events (no paths to give)."""

ALL_FORMATS = (*STREAM_FORMATS, *PROVIDER_PARSERS)
"""Values accepted by ``--stream-format``."""

FORMATS_WITH_DONE = ("openai", "ndjson", "anthropic", "openai-responses")
"""Stream formats whose server always says when the answer is complete ([DONE], done: true, message_stop...)."""


def stream_parser(stream_format: str, text_path: str | None, usage_path: str | None) -> StreamParser:
    """A fresh parser for one answer in ``stream_format``; raises InputError for a bad format or path."""
    provider = PROVIDER_PARSERS.get(stream_format)
    if provider is None:
        if stream_format not in STREAM_FORMATS:
            raise InputError(f"--stream-format {stream_format!r} is not known; use one of: {', '.join(ALL_FORMATS)}")
        return make_parser(stream_format, text_path, usage_path)
    if text_path or usage_path:
        option = "--stream-text-path" if text_path else "--stream-usage-path"
        raise InputError(f"{option} applies only to --stream-format sse or ndjson, not {stream_format}; drop it")
    return provider()


def request_body(
    shape: str, base: dict[str, Any], max_tokens: int, system: str, messages: list[dict[str, str]]
) -> dict[str, Any]:
    """The body of one request in ``shape``: ``base`` (model, stream, temperature...) plus the conversation.

    ``max_tokens`` 0 means the server's default (Anthropic's is required: ANTHROPIC_MAX_TOKENS).
    """
    body = dict(base)
    if shape == "anthropic":
        body["max_tokens"] = max_tokens or ANTHROPIC_MAX_TOKENS
        if system:
            body["system"] = system
        body["messages"] = messages
        return body
    if shape == "responses":
        if max_tokens:
            body["max_output_tokens"] = max_tokens
        if system:
            body["instructions"] = system
        body["input"] = messages
        return body
    if shape == "ollama":  # Ollama takes sampling settings under options
        options = {"num_predict": max_tokens} if max_tokens else {}
        if "temperature" in body:
            options["temperature"] = body.pop("temperature")
        if options:
            body["options"] = options
    elif max_tokens:
        body["max_tokens"] = max_tokens
    body["messages"] = ([{"role": "system", "content": system}] if system else []) + messages
    return body
