"""Faults demobot can inject on purpose, so tests show how a load tester copes with a misbehaving target.

``--fault KIND[:RATE][@ROUTES]`` (repeatable) makes that share of requests misbehave (RATE defaults to 1).
ROUTES is a comma-separated list of route groups (below); without it a kind hits every default group it
applies to. Each request draws once per configured fault that applies to it, in command-line order.

Route groups: ``chat`` (/api/chat, /api/bots/{id}/chat), ``completions`` (/v1/chat/completions), ``ws``
(each prompt on /ws/chat), ``plenary`` (each join and message on /ws/plenary), ``audio`` (each call on
/ws/audio and /v1/realtime), and, only when named, ``health`` (/healthcheck) and ``auth`` (register, login).

HTTP answers (chat, completions, health, auth), before anything is generated:

- ``reset``: the connection is reset (TCP RST) without an answer.
- ``malformed``: a 200 whose JSON body is cut off (not valid JSON); streamed: see below.
- ``slow-headers``: nothing is sent for ``--fault-delay`` seconds (default 30), then the normal answer.
- ``500``, ``502``, ``503``: that status with a JSON error body.
- ``429``: Too Many Requests with ``Retry-After: --retry-after``.

Streamed /v1/chat/completions answers, besides the HTTP kinds:

- ``cut``: the connection is reset halfway through the answer.
- ``error-event``: halfway through, an SSE error event, then the stream ends.
- ``empty``: the answer carries no content at all.
- ``no-done``: the stream ends without ``data: [DONE]``.
- ``malformed``: one event halfway through is not valid JSON.
- ``stall``: halfway through, the stream stops sending and never ends.

WebSockets (ws, plenary, audio):

- ``ws-close``: the connection is dropped abruptly, without a close frame (a TCP reset, as when a server
  or proxy dies): at the prompt, at the join or message, or halfway through a call's spoken reply.
- ``ws-silent``: the message is taken and never answered (a prompt or join gets no reply, a message is
  not broadcast, a call hears nothing at all); the connection stays open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from demobot.http_util import openai_error

if TYPE_CHECKING:  # demobot.config imports this module
    from demobot.config import BotConfig

STATUS_FAULTS = ("500", "502", "503", "429")
"""Faults that answer with that HTTP status at once."""

HTTP_FAULTS = ("reset", "malformed", "slow-headers", *STATUS_FAULTS)
"""Faults of a JSON answer, acted out before it is generated."""

MID_STREAM_FAULTS = ("cut", "error-event", "empty", "no-done", "malformed", "stall")
"""Faults acted out inside a streamed answer."""

STREAM_FAULTS = (*MID_STREAM_FAULTS, "reset", "slow-headers", *STATUS_FAULTS)
"""Fault kinds for streamed answers: the HTTP kinds (``malformed`` is the mid-stream one) and the stream kinds."""

WS_FAULTS = ("ws-close", "ws-silent")
"""Faults of WebSocket routes."""

GROUP_FAULTS: dict[str, tuple[str, ...]] = {
    "chat": HTTP_FAULTS,
    "completions": STREAM_FAULTS,
    "ws": WS_FAULTS,
    "plenary": WS_FAULTS,
    "audio": WS_FAULTS,
    "health": tuple(kind for kind in HTTP_FAULTS if kind != "malformed"),  # a health check reads no body
    "auth": HTTP_FAULTS,
}
"""The fault kinds each route group can suffer."""

DEFAULT_GROUPS = ("chat", "completions", "ws", "plenary", "audio")
"""Where a fault without ``@ROUTES`` applies: the chatbot's answers, never its health check or sign-in."""

FAULT_KINDS = tuple(dict.fromkeys(kind for kinds in GROUP_FAULTS.values() for kind in kinds))
"""Every fault kind, in documentation order."""

FAULT_STATUS = 598
"""Status logged for an answer that an injected fault ended or replaced by garbage."""

MALFORMED_BODY = b'{"answer": "this answer was cut off in the midd'
"""The body of a ``malformed`` JSON answer: valid JSON that stops halfway."""


@dataclass(frozen=True)
class Fault:
    """One --fault: what goes wrong, how often, and on which route groups."""

    kind: str
    rate: float = 1.0
    groups: tuple[str, ...] = DEFAULT_GROUPS

    def applies_to(self, group: str, kinds: tuple[str, ...]) -> bool:
        return group in self.groups and self.kind in kinds


def parse_fault(text: str) -> Fault:
    """Parse ``KIND[:RATE][@GROUP[,GROUP...]]`` for --fault."""
    spec, _, groups_text = text.partition("@")
    kind, _, rate_text = spec.partition(":")
    if kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
    try:
        rate = float(rate_text) if rate_text else 1.0
    except ValueError:
        rate = -1.0
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"the rate of {kind} must be a number from 0 to 1")
    fits = tuple(group for group, kinds in GROUP_FAULTS.items() if kind in kinds)
    if not groups_text:
        return Fault(kind, rate, tuple(group for group in DEFAULT_GROUPS if group in fits))
    groups = tuple(group.strip() for group in groups_text.split(","))
    for group in groups:
        if group not in GROUP_FAULTS:
            raise argparse.ArgumentTypeError(f"unknown route group {group!r}; known: {', '.join(GROUP_FAULTS)}")
        if group not in fits:
            raise argparse.ArgumentTypeError(f"{kind} does not apply to {group}; it applies to {', '.join(fits)}")
    return Fault(kind, rate, groups)


def pick_fault(faults: tuple[Fault, ...], group: str, kinds: tuple[str, ...], rng: random.Random) -> str | None:
    """The fault this request of ``group`` suffers, if any: each configured fault among ``kinds`` draws once."""
    for fault in faults:
        if fault.applies_to(group, kinds) and rng.random() < fault.rate:
            return fault.kind
    return None


STALL_S = 3600.0
"""How long a stalled stream stays silent (the client's timeout ends it first)."""


@dataclass(frozen=True)
class MidStreamFrames:
    """What a stream's mid-stream faults send, in its own framing."""

    malformed: bytes
    """An event that is not valid JSON."""
    error: bytes
    """The API's error event."""


async def act_out_mid_stream(
    request: web.Request, response: web.StreamResponse, fault: str, frames: MidStreamFrames
) -> bool:
    """Act out a mid-stream fault (``malformed``, ``error-event``, ``cut``, ``stall``); True when the stream is over."""
    if fault == "malformed":
        await response.write(frames.malformed)
        return False
    if fault == "error-event":
        await response.write(frames.error)
        await response.write_eof()
    elif fault == "cut" and request.transport is not None:
        request.transport.abort()
    elif fault == "stall":
        await asyncio.sleep(STALL_S)
    return fault in ("error-event", "cut", "stall")


def reset_connection(request: web.Request) -> None:
    """Drop the request's connection at once with a TCP reset: no answer, no close frame, no FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0: closing sends RST, so the peer sees "connection reset" rather than a tidy end of stream.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def answer_fault(
    request: web.Request,
    fault: str | None,
    delay_s: float,
    retry_after_s: int,
    finish: Callable[[int], None] | None = None,
) -> web.StreamResponse | None:
    """Act out an HTTP fault before the answer: the reply to send instead, or None to answer as usual.

    ``slow-headers`` waits ``delay_s`` and then returns None; the mid-stream kinds are left to the stream.
    ``finish`` is told the status to log when the fault replaces the answer.
    """
    if fault == "slow-headers":
        await asyncio.sleep(delay_s)
        return None
    if fault == "reset":
        reply: web.StreamResponse = web.Response(status=FAULT_STATUS)  # never sent: the connection is gone
        reset_connection(request)
    elif fault == "malformed":
        reply = web.Response(body=MALFORMED_BODY, content_type="application/json")
    elif fault in STATUS_FAULTS:
        status = int(fault)
        headers = {"Retry-After": str(retry_after_s)} if status == 429 else None
        kind = "rate_limit_error" if status == 429 else "server_error"
        reply = openai_error(status, f"injected fault: HTTP {status}", kind, headers=headers)
    else:
        return None
    if finish is not None:
        finish(reply.status if fault in STATUS_FAULTS else FAULT_STATUS)
    return reply


async def completion_fault(
    request: web.Request, config: BotConfig, rng: random.Random, stream: bool, finish: Callable[[int], None]
) -> tuple[str | None, web.StreamResponse | None]:
    """Draw a fault for a completions answer and act out its HTTP kinds: (the fault the stream itself acts out,
    or None; the reply to send instead of the answer, or None)."""
    fault = pick_fault(config.faults, "completions", STREAM_FAULTS if stream else HTTP_FAULTS, rng)
    if stream and fault in MID_STREAM_FAULTS:
        return fault, None
    return None, await answer_fault(request, fault, config.fault_delay, config.retry_after, finish)


async def http_fault(
    request: web.Request,
    config: BotConfig,
    rng: random.Random,
    group: str,
    finish: Callable[[int], None] | None = None,
) -> web.StreamResponse | None:
    """Draw a fault for a JSON (not streamed) answer of ``group`` and act it out (see `answer_fault`)."""
    fault = pick_fault(config.faults, group, HTTP_FAULTS, rng)
    return await answer_fault(request, fault, config.fault_delay, config.retry_after, finish)
