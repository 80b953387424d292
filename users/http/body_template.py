"""``--body-template``: a REST question's body in the bot's own shape, with placeholders filled per question.

A template is JSON (inline, or ``@FILE``) whose strings may hold ``{prompt}`` (the question), ``{session_id}``
(the conversation's id), ``{user}`` (the simulated user's number); a string that is exactly ``{history}``
becomes the conversation so far, a list of ``{"role": "user" | "assistant", "content": ...}``. For example
Rasa's REST channel: ``{"sender": "{user}", "message": "{prompt}"}`` with ``--answer-field 0.text``.
``--body-format form`` sends a flat template form-encoded instead of as JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from core.errors import InputError
from core.input_files import read_text_file

PLACEHOLDERS = frozenset({"prompt", "session_id", "user", "history"})
PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")
HISTORY = "{history}"
MAX_TEMPLATE_BYTES = 1_000_000
"""A body template file larger than this is refused (a template is a few lines)."""

FLAG = "--body-template"


@dataclass(frozen=True)
class BodyTemplate:
    """A parsed template; ``render`` fills it for one question."""

    shape: Any

    def render(self, prompt: str, session_id: str, user: str, history: list[dict[str, str]]) -> Any:
        values = {"prompt": prompt, "session_id": session_id, "user": user}

        def fill(node: Any) -> Any:
            if isinstance(node, dict):
                return {key: fill(value) for key, value in node.items()}
            if isinstance(node, list):
                return [fill(value) for value in node]
            if node == HISTORY:
                return history
            if isinstance(node, str):
                return PLACEHOLDER.sub(lambda match: values.get(match[1], match[0]), node)
            return node

        return fill(self.shape)

    @property
    def uses_history(self) -> bool:
        return HISTORY in json.dumps(self.shape)


def parse_template(text: str, form: bool) -> BodyTemplate | None:
    """The template of ``--body-template`` (None when not given); InputError for one that cannot work."""
    text = text.strip()
    if not text:
        return None
    source = read_text_file(text[1:], FLAG, MAX_TEMPLATE_BYTES) if text.startswith("@") else text
    try:
        shape = json.loads(source)
    except json.JSONDecodeError as error:
        raise InputError(f"{FLAG}: not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(shape, dict):
        raise InputError(f'{FLAG}: must be a JSON object, like {{"message": "{{prompt}}"}}')
    used = set(PLACEHOLDER.findall(json.dumps(shape)))
    if unknown := sorted(used - PLACEHOLDERS):
        raise InputError(
            f"{FLAG}: unknown placeholder {{{unknown[0]}}}; use {{prompt}}, {{session_id}}, {{user}}, {{history}}"
        )
    if "prompt" not in used:
        raise InputError(f"{FLAG}: no {{prompt}} in it, so the question would never be sent")
    if form and any(isinstance(value, dict | list) or value == HISTORY for value in shape.values()):
        raise InputError(f"{FLAG}: --body-format form needs a flat template (names and text values)")
    return BodyTemplate(shape)
