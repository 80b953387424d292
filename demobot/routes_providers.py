"""demobot speaking the other chat APIs Chatswarm has presets for: Anthropic Messages, OpenAI Responses, Ollama.

``POST /v1/messages`` (Anthropic SSE with ``event:`` lines and ``ping`` keep-alives), ``POST /v1/responses``
(typed SSE events, no ``[DONE]``) and Ollama's ``POST /api/chat`` NDJSON (a body with ``messages``; demobot's own
REST chat on the same path hands it over). Every answer is streamed on the same token timeline as
/v1/chat/completions: ``--reasoning-tokens`` reasoning deltas first (thinking_delta, reasoning_summary_text.delta,
message.thinking), then ``--answer-tokens`` answer tokens, each written the moment it is due. Usage counts both,
as the providers do. The stream faults of the ``completions`` group (--fault) apply here too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from demobot.faults import FAULT_STATUS, MidStreamFrames, act_out_mid_stream, completion_fault
from demobot.generation import make_answer, question_words, stream_pieces
from demobot.http_util import openai_error, read_json_object
from demobot.routes_auth import require_token
from demobot.serving import Generation

PING_EVERY = 4
"""Anthropic: a ``ping`` event after message_start and after every this many tokens."""
INJECTED_ERROR = "injected fault: the model crashed"


def _json(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


def _sse(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {_json({'type': name, **data})}\n\n".encode()


@dataclass
class Wire:
    """How one API frames a streamed answer: what goes before, around and after the tokens."""

    content_type: str
    start: Callable[[], bytes]
    reasoning: Callable[[str], bytes]
    answer: Callable[[str, bool], bytes]
    """One answer piece; the flag says it is the first (Anthropic opens a text block before it)."""
    end: Callable[[int, int], bytes]
    """Everything after the last token, given (prompt tokens, output tokens)."""
    error: bytes
    ping: bytes = b""


def anthropic_wire(model: str, request_id: str) -> Wire:
    """Anthropic Messages streaming events."""

    def delta(index: int, kind: str, key: str) -> Callable[[str], bytes]:
        return lambda text: _sse("content_block_delta", {"index": index, "delta": {"type": kind, key: text}})

    thinking, text = delta(0, "thinking_delta", "thinking"), delta(1, "text_delta", "text")

    def answer(piece: str, first: bool) -> bytes:
        opening = _sse("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}})
        return (opening if first else b"") + text(piece)

    def end(prompt_tokens: int, output_tokens: int) -> bytes:
        stop = {"stop_reason": "end_turn", "stop_sequence": None}
        return (
            _sse("content_block_stop", {"index": 1})
            + _sse("message_delta", {"delta": stop, "usage": {"output_tokens": output_tokens}})
            + _sse("message_stop", {})
        )

    message = {"id": f"msg_{request_id}", "type": "message", "role": "assistant", "model": model, "content": []}
    message["usage"] = {"input_tokens": 0, "output_tokens": 1}
    error = {"error": {"type": "overloaded_error", "message": INJECTED_ERROR}}
    return Wire(
        "text/event-stream",
        lambda: _sse("message_start", {"message": message}) + _sse("ping", {}),
        thinking,
        answer,
        end,
        _sse("error", error),
        _sse("ping", {}),
    )


def responses_wire(model: str, request_id: str) -> Wire:
    """OpenAI Responses API streaming events."""
    response = {"id": f"resp_{request_id}", "object": "response", "model": model, "status": "in_progress"}

    def end(prompt_tokens: int, output_tokens: int) -> bytes:
        usage = {"input_tokens": prompt_tokens, "output_tokens": output_tokens}
        usage["total_tokens"] = prompt_tokens + output_tokens
        return _sse("response.completed", {"response": {**response, "status": "completed", "usage": usage}})

    return Wire(
        "text/event-stream",
        lambda: _sse("response.created", {"response": response}),
        lambda piece: _sse("response.reasoning_summary_text.delta", {"delta": piece}),
        lambda piece, first: _sse("response.output_text.delta", {"delta": piece}),
        end,
        _sse("error", {"code": "server_error", "message": INJECTED_ERROR, "param": None}),
    )


def ollama_wire(model: str, request_id: str) -> Wire:
    """Ollama /api/chat NDJSON lines."""

    def line(message: dict, **extra: object) -> bytes:
        return (_json({"model": model, "message": {"role": "assistant", **message}, **extra}) + "\n").encode()

    def end(prompt_tokens: int, output_tokens: int) -> bytes:
        return line(
            {"content": ""}, done=True, done_reason="stop", prompt_eval_count=prompt_tokens, eval_count=output_tokens
        )

    return Wire(
        "application/x-ndjson",
        lambda: b"",
        lambda piece: line({"content": "", "thinking": piece}, done=False),
        lambda piece, first: line({"content": piece}, done=False),
        end,
        (_json({"error": INJECTED_ERROR}) + "\n").encode(),
    )


def _text(content: object) -> str:
    """A message's text: a string, or the text parts of a list (Anthropic and Responses content blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _conversation(body: dict, key: str) -> list[str] | str:
    """The texts of the conversation under ``key`` (the question last), or the message for a 400."""
    messages = body.get(key)
    if isinstance(messages, str) and key == "input":
        return [messages]
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return f"'{key}' must be a non-empty list of message objects"
    return [_text(m.get("content")) for m in messages]


def _route(group_name: str, key: str, make_wire: Callable[[str, str], Wire]) -> Callable:
    @require_token
    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream_answer(request, group_name, key, make_wire)

    return handler


async def stream_answer(
    request: web.Request, route: str, key: str, make_wire: Callable[[str, str], Wire]
) -> web.StreamResponse:
    """Validate, admit, and stream one answer in ``make_wire``'s framing (the reply to a bad body is a 400)."""
    generation = Generation(request, route, stream=True)
    body = await read_json_object(request)
    texts = _conversation(body, key) if body is not None else "the body must be a JSON object"
    if route == "messages" and not request.headers.get("anthropic-version"):
        texts = "anthropic-version: header is required"  # as Anthropic answers
    if isinstance(texts, str):
        return openai_error(400, texts, "invalid_request_error", headers=generation.headers)
    state = generation.state
    config = state.config
    mid_stream_fault, reply = await completion_fault(request, config, state.rng, True, generation.finish)
    if reply is not None:
        return reply
    ticket = generation.admit_unless_failed()
    if isinstance(ticket, web.Response):
        return ticket
    model = body.get("model") if isinstance(body.get("model"), str) else "demobot"
    wire = make_wire(model, generation.id)
    reasoning = stream_pieces(make_answer("reasoning", config.reasoning_tokens, config.seed))
    answer = stream_pieces(make_answer(texts[-1], config.answer_tokens, config.seed))
    events = [wire.reasoning(piece) for piece in reasoning]
    events += [wire.answer(piece, index == 0) for index, piece in enumerate(answer)]
    if mid_stream_fault == "empty":
        events = []
    headers = {"Content-Type": wire.content_type, "Cache-Control": "no-cache", **generation.headers}
    response = web.StreamResponse(headers=headers)
    timing = generation.timing
    frames = MidStreamFrames(b"data: {nope\n\n" if wire.content_type == "text/event-stream" else b"{nope\n", wire.error)
    async with generation.answering(ticket):
        await response.prepare(request)
        timeline = await generation.acquire(ticket)
        await response.write(wire.start())
        for index, event in enumerate(events):
            await timeline.wait_for(index)
            if (
                mid_stream_fault
                and index == len(events) // 2
                and await act_out_mid_stream(request, response, mid_stream_fault, frames)
            ):
                generation.finish(FAULT_STATUS)
                return response
            await response.write(event + (wire.ping if index % PING_EVERY == PING_EVERY - 1 else b""))
            if index == 0:
                timing.first_token = time.time()
            timing.tokens = index + 1
        if mid_stream_fault != "no-done":
            await response.write(wire.end(sum(question_words(text) for text in texts), len(events)))
        await response.write_eof()
    return response


ollama_chat = _route("ollama", "messages", ollama_wire)
"""Ollama's /api/chat; demobot's REST chat route hands over bodies with ``messages``."""


def setup(app: web.Application) -> None:
    """Register the Anthropic and Responses routes (Ollama's /api/chat shares demobot's REST chat path)."""
    app.router.add_post("/v1/messages", _route("messages", "messages", anthropic_wire))
    app.router.add_post("/v1/responses", _route("responses", "input", responses_wire))
