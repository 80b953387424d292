"""demobot's bot management API and per-bot chat: create, upload pairs, train, chat, list, delete."""

from __future__ import annotations

import time

from aiohttp import web

from demobot.bots import EMPTY, Bot, BotStore
from demobot.generation import make_answer
from demobot.http_util import read_json_object, simple_error
from demobot.routes_auth import require_token
from demobot.serving import Generation
from demobot.state import STATE

BOTS = web.AppKey("demobot_bots", BotStore)


def _bot(request: web.Request) -> Bot | web.Response:
    """The bot the path names, or the 404 to answer."""
    bot = request.app[BOTS].bots.get(request.match_info["bot_id"])
    return bot if bot is not None else simple_error(404, f"no bot {request.match_info['bot_id']!r}")


@require_token
async def list_bots(request: web.Request) -> web.Response:
    """List bots: [{"id", "name", "status", "pairs", "chats"}]."""
    now = time.monotonic()
    return web.json_response([bot.describe(now) for bot in request.app[BOTS].bots.values()])


@require_token
async def create_bot(request: web.Request) -> web.Response:
    """Create a bot from {"name"}: 201 {"id", "name", "status": "empty", ...}."""
    body = await read_json_object(request)
    name = body.get("name") if body else None
    if not isinstance(name, str) or not name.strip():
        return simple_error(400, "'name' must be a non-empty string")
    bot = request.app[BOTS].create(name.strip())
    return web.json_response(bot.describe(time.monotonic()), status=201)


@require_token
async def get_bot(request: web.Request) -> web.Response:
    """One bot's status: empty, uploaded, training or trained."""
    bot = _bot(request)
    return bot if isinstance(bot, web.Response) else web.json_response(bot.describe(time.monotonic()))


@require_token
async def delete_bot(request: web.Request) -> web.Response:
    """Delete a bot."""
    bot = _bot(request)
    if isinstance(bot, web.Response):
        return bot
    del request.app[BOTS].bots[bot.id]
    return web.Response(status=204)


@require_token
async def upload_pairs(request: web.Request) -> web.Response:
    """Upload training pairs {"pairs": [{"question", "answer"}]}: {"pairs": total}."""
    bot = _bot(request)
    if isinstance(bot, web.Response):
        return bot
    body = await read_json_object(request)
    pairs = body.get("pairs") if body else None
    if not isinstance(pairs, list) or not all(
        isinstance(p, dict) and isinstance(p.get("question"), str) and isinstance(p.get("answer"), str) for p in pairs
    ):
        return simple_error(400, '\'pairs\' must be a list of {"question": str, "answer": str}')
    request.app[BOTS].upload(bot, [(p["question"], p["answer"]) for p in pairs])
    return web.json_response({"pairs": len(bot.pairs)})


@require_token
async def train_bot(request: web.Request) -> web.Response:
    """Start training on the uploaded pairs: 202 {"status": "training"}; poll GET /api/bots/{id}."""
    bot = _bot(request)
    if isinstance(bot, web.Response):
        return bot
    if bot.status(time.monotonic()) == EMPTY:
        return simple_error(409, "upload pairs before training")
    request.app[BOTS].train(bot)
    return web.json_response(bot.describe(time.monotonic()), status=202)


@require_token
async def chat_with_bot(request: web.Request) -> web.Response:
    """Ask one bot {"message"}: its trained answer when it knows the question, else a generic one."""
    bot = _bot(request)
    if isinstance(bot, web.Response):
        return bot
    generation = Generation(request, "chat", stream=False)
    body = await read_json_object(request)
    message = body.get("message") if body else None
    if not isinstance(message, str) or not message.strip():
        return simple_error(400, "'message' must be a non-empty string", headers=generation.headers)
    state = generation.state
    ticket = await generation.admit_json_answer(request, "chat")
    if isinstance(ticket, web.StreamResponse):
        return ticket
    known = bot.answer_for(message, time.monotonic())
    tokens = known.split() if known else make_answer(message, state.config.answer_tokens, state.config.seed)
    await generation.answer_whole(ticket, len(tokens))
    bot.chats += 1
    answer = {"answer": " ".join(tokens), "bot_id": bot.id, "known": known is not None, "request_id": generation.id}
    return web.json_response(answer, headers=generation.headers)


def setup(app: web.Application) -> None:
    """Register the bot routes."""
    app[BOTS] = BotStore(train_time_s=app[STATE].config.train_time)
    app.router.add_get("/api/bots", list_bots)
    app.router.add_post("/api/bots", create_bot)
    app.router.add_get("/api/bots/{bot_id}", get_bot)
    app.router.add_delete("/api/bots/{bot_id}", delete_bot)
    app.router.add_post("/api/bots/{bot_id}/pairs", upload_pairs)
    app.router.add_post("/api/bots/{bot_id}/train", train_bot)
    app.router.add_post("/api/bots/{bot_id}/chat", chat_with_bot)
