"""demobot's plain REST chat routes: a question in, the whole answer out once it is generated.

``/api/chat`` is demobot's own shape; ``/webhooks/rest/webhook`` is Rasa's REST channel ({"sender", "message"}
in, a list of {"recipient_id", "text"} out), so a --body-template for Rasa is tested against a real server.
"""

from __future__ import annotations

from collections.abc import Callable

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
    return await _answer(request, "session_id", lambda answer: answer)


@require_token
async def rasa_webhook(request: web.Request) -> web.Response:
    """Rasa's REST channel: {"sender", "message"} → [{"recipient_id": sender, "text": answer}] when generated."""
    return await _answer(request, "sender", _rasa_messages)


def _rasa_messages(answer: dict) -> list[dict]:
    return [{"recipient_id": answer["session_id"], "text": answer["answer"]}]


async def _answer(request: web.Request, session_key: str, shape: Callable[[dict], object]) -> web.Response:
    """Generate the whole answer to a {"message", <session_key>?} body; ``shape`` turns it into the route's reply."""
    generation = Generation(request, "chat", stream=False)
    body = await read_json_object(request)
    if body is None:
        return simple_error(400, "the body must be a JSON object", headers=generation.headers)
    message, session_id = body.get("message"), body.get(session_key)
    if not isinstance(message, str) or not message.strip():
        return simple_error(400, "'message' must be a non-empty string", headers=generation.headers)
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        return simple_error(400, f"'{session_key}' must be a non-empty string when given", headers=generation.headers)

    state = generation.state
    ticket = await generation.admit_json_answer(request, "chat")
    if isinstance(ticket, web.StreamResponse):
        return ticket
    session_id, turn = state.sessions.next_turn(session_id)
    tokens = make_answer(message, state.config.answer_tokens, state.config.seed, salt=str(turn))
    await generation.answer_whole(ticket, len(tokens))
    answer = {
        "answer": " ".join(tokens),
        "session_id": session_id,
        "turn": turn,
        "tokens": len(tokens),
        "request_id": generation.id,
    }
    return web.json_response(shape(answer), headers=generation.headers)


def setup(app: web.Application) -> None:
    """Register the REST chat route."""
    app.router.add_post("/api/chat", chat)
    app.router.add_post("/webhooks/rest/webhook", rasa_webhook)
