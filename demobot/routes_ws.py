"""demobot's WebSocket chat: prompts in, whole or streamed replies out, several in flight per connection.

``GET /ws/chat`` upgrades to a WebSocket. The client sends ``{"message": ..., "id": ..., "stream": bool}``;
each prompt goes through the same capacity model and timing log as the HTTP chat routes, and is answered
with ``{"id", "answer", "done": true}`` or, streamed, one ``{"id", "delta"}`` per token when it is due
and then ``{"id", "done": true}``. Overload and injected errors answer ``{"id", "error"}``. Under
``--auth required`` the handshake needs a bearer token (Authorization header or ``?token=``), else 401.

Test hooks (a prompt that starts with one of these makes the server misbehave on purpose, so tests can
check how a client classifies each failure): ``/close CODE`` closes the connection with that code,
``/drop`` cuts the connection without a close frame, ``/error`` answers with an error reply,
``/silence`` never answers, ``/protocol-error`` sends a frame with a reserved opcode. The ``ws-close`` and
``ws-silent`` faults (``--fault``, demobot/faults.py) do the same to a share of ordinary prompts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from aiohttp import WSMsgType, web

from demobot.accounts import TokenStatus
from demobot.faults import WS_FAULTS, pick_fault, reset_connection
from demobot.generation import make_answer, stream_pieces
from demobot.serving import Generation
from demobot.state import STATE

INVALID_PAYLOAD = 1007
"""Close code for a message that is not a JSON object with a "message" string."""

RESERVED_OPCODE_FRAME = b"\x83\x00"
"""A final frame with the reserved opcode 3: a protocol error every client must reject."""


def bearer_token(request: web.Request) -> str | None:
    """The token of a WebSocket handshake: ``Authorization: Bearer ...`` or the ``token`` query parameter."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query.get("token") or None


def handshake_refusal(request: web.Request) -> web.Response | None:
    """The 401 to answer instead of upgrading when --auth required and the token is not valid."""
    state = request.app[STATE]
    cognito = getattr(state, "cognito", None)
    if cognito is not None:
        token = bearer_token(request)
        failure = cognito.failure(f"Bearer {token}" if token else "")
        return web.json_response({"error": failure}, status=401) if failure else None
    if state.config.auth != "required":
        return None
    status = state.accounts.check_token(bearer_token(request))
    if status is TokenStatus.VALID:
        return None
    reason = "token expired" if status is TokenStatus.EXPIRED else "missing or invalid token"
    return web.json_response({"error": reason}, status=401)


async def ws_chat(request: web.Request) -> web.StreamResponse:
    """WebSocket chat: {"message", "id", "stream"} in, {"id", "answer"} or {"id", "delta"}… {"done"} out."""
    refusal = handshake_refusal(request)
    if refusal is not None:
        return refusal
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    state = request.app[STATE]
    answers: set[asyncio.Task] = set()
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            prompt = _prompt(message.data)
            if prompt is None:
                await ws.close(code=INVALID_PAYLOAD, message=b"expected a JSON object with a message")
                break
            text, request_id, stream = prompt
            hook = await _test_hook(request, ws, text, request_id) if text.startswith("/") else None
            if hook is not None:
                if hook:
                    break
                continue
            fault = pick_fault(state.config.faults, "ws", WS_FAULTS, state.rng)
            if fault == "ws-close":
                reset_connection(request)
                break
            if fault == "ws-silent":
                continue  # taken, never answered
            task = asyncio.create_task(_answer(request, ws, text, request_id, stream))
            answers.add(task)
            task.add_done_callback(answers.discard)
    finally:
        for task in answers:
            task.cancel()
    return ws


def _prompt(data: str) -> tuple[str, object, bool] | None:
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("message"), str) or not body["message"].strip():
        return None
    return body["message"], body.get("id"), bool(body.get("stream", False))


async def _test_hook(request: web.Request, ws: web.WebSocketResponse, text: str, request_id: object) -> bool | None:
    """Misbehave as the prompt asks: True when the connection is over, False when not, None for no hook."""
    command, _, argument = text.partition(" ")
    if command == "/close":
        code = int(argument) if argument.strip().isdigit() else 1011
        await ws.close(code=code, message=b"closed on request")
        return True
    if command == "/drop" and request.transport is not None:
        request.transport.abort()
        return True
    if command == "/protocol-error" and request.transport is not None:
        request.transport.write(RESERVED_OPCODE_FRAME)
        return False
    if command == "/error":
        await ws.send_json({"id": request_id, "error": "injected error"})
        return False
    return False if command == "/silence" else None


async def _answer(request: web.Request, ws: web.WebSocketResponse, text: str, request_id: object, stream: bool) -> None:
    """Generate one reply through the capacity model and send it, whole or token by token."""
    generation = Generation(request, "ws", stream=stream)
    if generation.injected_error() is not None:
        await _send(ws, {"id": request_id, "error": "injected error"})
        return
    ticket = generation.admit()
    if isinstance(ticket, web.Response):
        await _send(ws, {"id": request_id, "error": "overloaded: every slot is busy and the queue is full"})
        return
    config = generation.state.config
    tokens = make_answer(text, config.answer_tokens, config.seed)
    async with generation.answering(ticket):
        if stream:
            timeline = await generation.acquire(ticket)
            for index, piece in enumerate(stream_pieces(tokens)):
                await timeline.wait_for(index)
                await ws.send_json({"id": request_id, "delta": piece})
                if index == 0:
                    generation.timing.first_token = time.time()
                generation.timing.tokens = index + 1
            await ws.send_json({"id": request_id, "done": True})
        else:
            await generation.generate_whole(ticket, len(tokens))
            await ws.send_json({"id": request_id, "answer": " ".join(tokens), "done": True})


async def _send(ws: web.WebSocketResponse, body: dict) -> None:
    with contextlib.suppress(ConnectionError):
        await ws.send_json(body)


def setup(app: web.Application) -> None:
    """Register the WebSocket chat route."""
    app.router.add_get("/ws/chat", ws_chat)
