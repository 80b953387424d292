"""demobot's OpenAI-compatible routes: /v1/models and /v1/chat/completions (whole or streamed as SSE).

The stream follows OpenAI and vLLM: headers go out as soon as the request is admitted (before a slot is
free), then a role-only chunk when the slot is acquired, then one SSE event per token exactly when it is
due, a finish chunk, an optional usage-only chunk, and `data: [DONE]`. The role chunk deliberately comes
early, so a client that times TTFT on the first chunk instead of the first content is caught.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web

from demobot.capacity import SlotTicket
from demobot.faults import FAULT_STATUS, MidStreamFrames, act_out_mid_stream, completion_fault
from demobot.generation import make_answer, question_words, stream_pieces
from demobot.http_util import openai_error, read_json_object
from demobot.routes_auth import require_token
from demobot.serving import Generation

MODEL_ID = "demobot"
STARTED_AT = web.AppKey("demobot_started_at", float)
_TOKEN_MARK = "\x00demobot-token\x00"


def _message_text(message: dict) -> str:
    """The text of one chat message, whether `content` is a string or a list of OpenAI content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (part.get("text") for part in content if isinstance(part, dict))
        return " ".join(text for text in texts if isinstance(text, str))
    return ""


@dataclass
class CompletionRequest:
    """A validated /v1/chat/completions body."""

    model: str
    question: str
    prompt_tokens: int
    max_tokens: int | None
    stream: bool
    include_usage: bool


def parse_completion_request(body: dict | None) -> CompletionRequest | str:
    """Validate a completions body; returns the request, or the error message for a 400."""
    if body is None:
        return "the body must be a JSON object"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return "'messages' must be a non-empty list of message objects"
    model = body.get("model") or MODEL_ID
    if not isinstance(model, str):
        return "'model' must be a string"
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        return "'max_tokens' / 'max_completion_tokens' must be a positive integer"
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        return "'stream_options' must be an object"
    texts = [_message_text(m) for m in messages]
    user_texts = [text for m, text in zip(messages, texts, strict=True) if m.get("role") == "user"]
    return CompletionRequest(
        model=model,
        question=(user_texts or texts)[-1],
        prompt_tokens=sum(question_words(text) for text in texts),
        max_tokens=max_tokens,
        stream=bool(body.get("stream", False)),
        include_usage=bool(stream_options.get("include_usage", False)),
    )


async def list_models(request: web.Request) -> web.Response:
    """The OpenAI model list: one model, "demobot"."""
    model = {"id": MODEL_ID, "object": "model", "created": int(request.app[STARTED_AT]), "owned_by": "chatswarm"}
    return web.json_response({"object": "list", "data": [model]})


@dataclass
class Completion:
    """One generated answer in OpenAI's wire formats: the whole `chat.completion` object or SSE chunk events."""

    id: str
    created: int
    model: str
    tokens: list[str]
    finish_reason: str
    prompt_tokens: int
    include_usage: bool

    @property
    def usage(self) -> dict[str, int]:
        """OpenAI's usage block."""
        completion_tokens = len(self.tokens)
        total = self.prompt_tokens + completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total}

    def whole(self) -> dict:
        """The non-streaming `chat.completion` object."""
        message = {"role": "assistant", "content": " ".join(self.tokens)}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": self.usage,
        }

    def _chunk(self, choices: list[dict], usage: dict | None = None) -> bytes:
        body: dict = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        body["choices"] = choices
        if self.include_usage:
            body["usage"] = usage  # OpenAI sends usage: null on every chunk once usage is requested
        return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

    def _delta_chunk(self, delta: dict, finish_reason: str | None = None) -> bytes:
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def role_event(self) -> bytes:
        """The first, role-only chunk."""
        return self._delta_chunk({"role": "assistant", "content": ""})

    def token_events(self) -> Iterator[bytes]:
        """One chunk per token, in order; pieces carry their leading space so they concatenate to the answer."""
        # Serialize the chunk once; each token then only fills in its JSON-quoted text.
        template = self._delta_chunk({"content": _TOKEN_MARK}).decode()
        prefix, _, suffix = template.rpartition(json.dumps(_TOKEN_MARK))
        for piece in stream_pieces(self.tokens):
            yield f"{prefix}{json.dumps(piece)}{suffix}".encode()

    def finish_event(self) -> bytes:
        """The chunk with an empty delta and the finish reason."""
        return self._delta_chunk({}, self.finish_reason)

    def usage_event(self) -> bytes:
        """The usage-only chunk (`choices: []`) sent when stream_options.include_usage is set."""
        return self._chunk([], self.usage)


@require_token
async def chat_completions(request: web.Request) -> web.StreamResponse:
    """OpenAI-compatible chat completion (messages, model, max_tokens, stream, stream_options.include_usage)."""
    generation = Generation(request, "completions", stream=False)
    parsed = parse_completion_request(await read_json_object(request))
    if isinstance(parsed, str):
        return openai_error(400, parsed, "invalid_request_error", headers=generation.headers)
    generation.timing.stream = parsed.stream
    state = generation.state
    mid_stream_fault, reply = await completion_fault(request, state.config, state.rng, parsed.stream, generation.finish)
    if reply is not None:
        return reply
    ticket = generation.admit_unless_failed()
    if isinstance(ticket, web.Response):
        return ticket

    config = generation.state.config
    n_tokens = config.answer_tokens if parsed.max_tokens is None else min(config.answer_tokens, parsed.max_tokens)
    completion = Completion(
        id=f"chatcmpl-{generation.id}",
        created=int(time.time()),
        model=parsed.model,
        tokens=make_answer(parsed.question, n_tokens, config.seed),
        # Like OpenAI: "length" when max_tokens cut the answer short.
        finish_reason="length" if n_tokens < config.answer_tokens else "stop",
        prompt_tokens=parsed.prompt_tokens,
        include_usage=parsed.include_usage,
    )
    if not parsed.stream:
        await generation.answer_whole(ticket, n_tokens)
        return web.json_response(completion.whole(), headers=generation.headers)
    return await _stream(request, generation, ticket, completion, mid_stream_fault)


async def _stream(
    request: web.Request, generation: Generation, ticket: SlotTicket, completion: Completion, fault: str | None
) -> web.StreamResponse:
    """Send the answer as SSE, each token's event written the moment it is due, and give the slot back.

    ``fault`` is a mid-stream fault to act out (demobot.faults), if any.
    """
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    response = web.StreamResponse(headers={**headers, **generation.headers})
    timing = generation.timing
    async with generation.answering(ticket):
        await response.prepare(request)  # headers leave now, before a slot is free (like vLLM)
        timeline = await generation.acquire(ticket)
        await response.write(completion.role_event())
        events = [] if fault == "empty" else list(completion.token_events())
        for index, event in enumerate(events):
            await timeline.wait_for(index)
            if fault and index == len(events) // 2 and await act_out_mid_stream(request, response, fault, MISBEHAVING):
                generation.finish(FAULT_STATUS)
                return response
            await response.write(event)  # straight to the socket: aiohttp does not buffer, TCP_NODELAY is on
            if index == 0:
                timing.first_token = time.time()
            timing.tokens = index + 1
        await response.write(completion.finish_event())
        if completion.include_usage:
            await response.write(completion.usage_event())
        if fault != "no-done":
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    return response


MISBEHAVING = MidStreamFrames(
    malformed=b'data: {"choices": [{"delta": {"content": "oops"\n\n',
    error=b"data: "
    + json.dumps({"error": {"message": "injected fault: the model crashed", "type": "server_error"}}).encode()
    + b"\n\n",
)
"""What the OpenAI stream's mid-stream faults send: an event cut off, and OpenAI's error event."""


def setup(app: web.Application) -> None:
    """Register the OpenAI-compatible routes."""
    app[STARTED_AT] = time.time()
    app.router.add_get("/v1/models", require_token(list_models))
    app.router.add_post("/v1/chat/completions", chat_completions)
