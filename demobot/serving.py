"""The life of one generation request on demobot, shared by the chat routes: id, injected errors, admission, timing.

Order for every generation route: validate → maybe inject an error (no slot) → admit (or 429) →
[streaming: send headers] → wait for a slot → produce tokens on the `TokenTimeline` → log the true timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from aiohttp import web

from demobot.capacity import Overloaded, SlotTicket
from demobot.faults import http_fault
from demobot.generation import TokenTimeline, wall_time_of
from demobot.http_util import openai_error
from demobot.state import STATE, BotState, new_request_id
from demobot.timing_log import GenerationTiming

CLIENT_CLOSED_STATUS = 499
"""Logged status when the client went away mid-generation (nginx's convention)."""


class Generation:
    """One generation request: its id, timing record, and the steps every generation route goes through."""

    def __init__(self, request: web.Request, route: str, stream: bool) -> None:
        self.state: BotState = request.app[STATE]
        self.id = new_request_id()
        self.timing = GenerationTiming(id=self.id, route=route, stream=stream, received=time.time())
        self.headers = {"X-Request-Id": self.id}
        self.finished = False
        self.state.counters.requests += 1

    def injected_error(self) -> web.Response | None:
        """With probability --error-rate, the immediate 500 to answer instead of generating (else None)."""
        rate = self.state.config.error_rate
        if rate <= 0 or self.state.rng.random() >= rate:
            return None
        self.state.counters.errors_injected += 1
        self.finish(500)
        return openai_error(500, "injected error", "server_error", headers=self.headers)

    def admit(self) -> SlotTicket | web.Response:
        """A ticket for a slot (maybe still queued), or the 429 to answer when demobot is overloaded."""
        try:
            return self.state.capacity.admit()
        except Overloaded:
            self.finish(429)
            retry_after = str(self.state.config.retry_after)
            return openai_error(
                429,
                "overloaded: every slot is busy and the queue is full",
                "rate_limit_error",
                headers={**self.headers, "Retry-After": retry_after},
            )

    def admit_unless_failed(self) -> SlotTicket | web.Response:
        """The injected 500 (--error-rate), else `admit`: a slot ticket or the 429 of an overloaded demobot."""
        failure = self.injected_error()
        return failure if failure is not None else self.admit()

    async def admit_json_answer(self, request: web.Request, group: str) -> SlotTicket | web.StreamResponse:
        """For a JSON (not streamed) answer: an injected fault of ``group`` (--fault), else `admit_unless_failed`."""
        fault = await http_fault(request, self.state.config, self.state.rng, group, self.finish)
        return fault if fault is not None else self.admit_unless_failed()

    async def acquire(self, ticket: SlotTicket) -> TokenTimeline:
        """Wait for the slot, then return the timeline its tokens are due on."""
        await ticket.acquire()
        start = time.perf_counter()
        self.timing.slot_acquired = wall_time_of(start)
        config = self.state.config
        others = max(0, self.state.capacity.active - 1)  # answers generated beside this one, fixed at its start
        token_ms = config.token_ms + config.token_ms_per_stream * others
        return TokenTimeline(start, config.ttft_ms / 1000.0, token_ms / 1000.0)

    async def generate_whole(self, ticket: SlotTicket, n_tokens: int) -> None:
        """Hold the slot until the whole answer is generated (non-streaming): ttft + (n-1) * token gap."""
        timeline = await self.acquire(ticket)
        await timeline.wait_for(n_tokens - 1)
        self.timing.first_token = wall_time_of(min(timeline.due(0), time.perf_counter()))
        self.timing.tokens = n_tokens

    async def answer_whole(self, ticket: SlotTicket, n_tokens: int) -> None:
        """Generate a whole (non-streamed) answer on the ticket's slot, give the slot back, record the outcome."""
        async with self.answering(ticket):
            await self.generate_whole(ticket, n_tokens)

    @contextlib.asynccontextmanager
    async def answering(self, ticket: SlotTicket) -> AsyncIterator[None]:
        """Produce and send the answer inside this block, which gives the slot back whatever happens.

        A client that went away is logged as 499: a lost connection ends the answer quietly (code after the block
        runs), a cancelled handler goes on being cancelled. An answer the block did not finish otherwise (a fault's
        status) is logged as 200.
        """
        try:
            yield
        except ConnectionError:
            self.finish(CLIENT_CLOSED_STATUS)
        except asyncio.CancelledError:
            self.finish(CLIENT_CLOSED_STATUS)
            raise
        finally:
            ticket.release()
        self.finish(200)

    def finish(self, status: int) -> None:
        """Record the outcome in the counters and the timing log; only the first call counts."""
        if self.finished:
            return
        self.finished = True
        self.timing.status = status
        self.timing.finished = time.time()
        self.state.counters.tokens_generated += self.timing.tokens
        if self.state.timing_log is not None:
            self.state.timing_log.record(self.timing)
