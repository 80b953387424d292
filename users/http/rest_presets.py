"""RestChatUser's ``--api`` presets: a REST chat API's path, request body and answer field, in one table.

A preset only sets defaults: an explicit --chat-path, --body-template or --answer-field still wins.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestPreset:
    """How one REST chat API is spoken."""

    chat_path: str
    body_template: str
    answer_field: str


REST_PRESETS = {
    "rasa": RestPreset("/webhooks/rest/webhook", '{"sender": "{user}", "message": "{prompt}"}', "0.text"),
}
"""Rasa's REST channel: the sender is the conversation, the answer a list of messages (the first one's text)."""
