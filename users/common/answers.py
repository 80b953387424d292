"""Reading an answer out of a chatbot's JSON reply: a dotted path such as ``data.answer`` or ``0.text``."""

from __future__ import annotations

from typing import Any

MISSING = object()
"""What dig() returns when the path is not in the reply (None may be a real value)."""


def dig(body: Any, dotted_path: str) -> Any:
    """The value at a dotted path such as ``data.answer`` or ``choices.0.text`` in parsed JSON, or MISSING."""
    value = body
    for key in dotted_path.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return MISSING
    return value
