"""demobot's plain REST chat route: a question in, the whole answer out once it is generated."""

from __future__ import annotations

from aiohttp import web

from demobot import routes_providers
from demobot.generation import make_answer
from demobot.http_util import read_json_object, simple_error
from demobot.routes_auth import require_token
from demobot.serving import Generation


@require_token
async def chat(request: web.Request) -> web.StreamResponse:
    """Ask {"message", "session_id"?}: {"answer", "session_id", "turn", "tokens", "request_id"} when generated.

    A body with ``messages`` and no ``message`` is Ollama's /api/chat: streamed as NDJSON (routes_providers).
    """
    body = await read_json_object(request)
    if body is not None and "messages" in body and "message" not in body:
        return await routes_providers.ollama_chat(request)
    generation = Generation(request, "chat", stream=False)
    if body is None:
        return simple_error(400, "the body must be a JSON object", headers=generation.headers)
    message, session_id = body.get("message"), body.get("session_id")
    if not isinstance(message, str) or not message.strip():
        return simple_error(400, "'message' must be a non-empty string", headers=generation.headers)
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        return simple_error(400, "'session_id' must be a non-empty string when given", headers=generation.headers)

    state = generation.state
    ticket = await generation.admit_json_answer(request, "chat")
    if isinstance(ticket, web.StreamResponse):
        return ticket
    session_id, turn = state.sessions.next_turn(session_id)
    tokens = make_answer(message, state.config.answer_tokens, state.config.seed, salt=str(turn))
    await generation.answer_whole(ticket, len(tokens))
    return web.json_response(
        {
            "answer": " ".join(tokens),
            "session_id": session_id,
            "turn": turn,
            "tokens": len(tokens),
            "request_id": generation.id,
        },
        headers=generation.headers,
    )


def setup(app: web.Application) -> None:
    """Register the REST chat route."""
    app.router.add_post("/api/chat", chat)
