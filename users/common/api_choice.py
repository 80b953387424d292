"""``--api NAME``: the chat API the users speak, one option for every kind of user.

Each user kind takes the presets meant for it and keeps its own defaults otherwise: StreamingChatUser the
streaming APIs (users/llm/api_presets.py), RestChatUser the REST ones (users/http/rest_presets.py).
StreamingChatUser's settings register the option (they inherit it); RestChatUser only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Settings, setting

STREAM_APIS = ("openai-chat", "openai-responses", "anthropic", "ollama", "sse", "ndjson", "text")
"""Presets of StreamingChatUser (``sse``, ``ndjson``, ``text``: the generic formats, OpenAI-style bodies)."""

REST_APIS = ("rasa",)
"""Presets of RestChatUser."""


@dataclass(frozen=True)
class ApiSettings(Settings):
    """Which chat API the users speak."""

    api: str = setting(
        "openai-chat",
        "Chat API to speak, setting paths, bodies, headers and stream formats: openai-chat, openai-responses, "
        "anthropic, ollama, or the generic sse, ndjson, text (streaming users); rasa (REST chat users)",
        choices=(*STREAM_APIS, *REST_APIS),
        web_ui=True,
    )
