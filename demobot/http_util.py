"""Small HTTP helpers the demobot route modules share: reading JSON bodies and shaping error replies."""

from __future__ import annotations

import json

from aiohttp import web


async def read_json_object(request: web.Request) -> dict | None:
    """The request body as a JSON object, or None when it is not valid JSON or not an object."""
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def simple_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error reply in demobot's own style: {"error": "<message>"}."""
    return web.json_response({"error": message}, status=status, headers=headers)


def openai_error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error reply in OpenAI's style: {"error": {"message": ..., "type": ...}}."""
    return web.json_response({"error": {"message": message, "type": kind}}, status=status, headers=headers)
