"""StreamingChatUser: a person watching a streamed answer arrive, timed token by token.

Each question becomes two rows in Locust's stats: ``TTFT chat:<category>`` (time to the first token)
and ``E2E chat:<category>`` (time to the end of the answer, where failures are counted). The full
timings of every answer travel with the E2E event as a StreamRecord, for the LLM metrics plugin.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import gevent
from geventhttpclient.response import HTTPParseError
from locust import task

from core.errors import InputError
from core.options import add_option, option, require_path, require_positive
from users.auth.providers import AuthFailed
from users.common import records
from users.common.chat_base import ChatUser
from users.common.http_failures import connection_failure, status_failure
from users.llm.http_stream import StreamingHttpClient, abandon, read_chunk
from users.llm.stream_metrics import StreamRecord
from users.llm.stream_parsers import STREAM_FORMATS, StreamParser, make_parser

API_KEY_VARIABLES = ("CHATBOT_API_KEY", "OPENAI_API_KEY")
"""Environment variables (or .env entries) that provide --api-key."""

"""Key of the StreamRecord in the context of E2E request events."""

ERROR_TEXT_LIMIT = 80
"""Failure names quote at most this much of a server's error message."""


FORMATS_WITH_DONE = ("openai", "ndjson")
"""Stream formats whose server always says when the answer is complete ([DONE], "done": true)."""

FIRST_TOKEN, SERVER_DONE, BODY_ENDED = "first token", "server done", "body ended"
"""Why reading a stream stopped."""


class StreamFailure(Exception):
    """A streamed answer that went wrong; the message is its failure name."""


def parser_expects_done(options: Any) -> bool:
    """Whether an answer that ends without the server's done marker was cut short."""
    return option(options, "stream_format", "openai") in FORMATS_WITH_DONE


def _read(
    response: Any, parser: StreamParser, record: StreamRecord, text: list[str], start: float, until_first_token: bool
) -> str:
    """Read the body as it arrives and file its events; returns why reading stopped."""
    while True:
        data = read_chunk(response)
        arrived_ms = (time.perf_counter() - start) * 1000
        for event in parser.feed(data) if data else parser.close():
            if event.kind == "content":
                record.chunk_times_ms.append(arrived_ms)
                text.append(event.text)
            elif event.kind == "usage":
                record.usage_tokens = event.output_tokens
            elif event.kind == "error":
                raise StreamFailure(f"error in stream: {event.text[:ERROR_TEXT_LIMIT]}")
            elif event.kind == "done":
                return SERVER_DONE
        if not data:
            return BODY_ENDED
        if until_first_token and record.chunk_times_ms:
            return FIRST_TOKEN


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register StreamingChatUser's options."""
    add_option(parser, "--stream-path", default="/v1/chat/completions", help="Path of the streaming chat endpoint")
    add_option(parser, "--stream-format", default="openai", choices=STREAM_FORMATS, help="Wire format of the stream")
    add_option(parser, "--stream-text-path", default="", help="Dotted JSON path of the text delta (sse, ndjson)")
    add_option(parser, "--stream-usage-path", default="", help="Dotted JSON path of the output token count")
    add_option(parser, "--model", default="demobot", help="Model name sent with each request")
    add_option(parser, "--max-tokens", type=int, default=0, help="Most tokens per answer (0 = the server's default)")
    add_option(parser, "--temperature", default="", help="Sampling temperature to send (empty = not sent)")
    add_option(parser, "--system-prompt", default="", help="System message put before every conversation")
    add_option(parser, "--extra-body", default="", help='JSON object merged into every request, e.g. {"top_p": 0.9}')
    add_option(
        parser,
        "--api-key",
        default="",
        is_secret=True,
        help="API key sent as a bearer token (default: CHATBOT_API_KEY or OPENAI_API_KEY)",
    )
    add_option(parser, "--history-turns", type=int, default=2, help="Earlier turns sent along with each question")
    add_option(parser, "--first-token-timeout", type=float, default=30.0, help="Seconds to wait for the first token")
    add_option(parser, "--stream-timeout", type=float, default=120.0, help="Seconds a whole answer may take")


def check_options(options: Any) -> None:
    """Raise InputError for a bad StreamingChatUser option."""
    require_path(option(options, "stream_path", "/v1/chat/completions"), "--stream-path")
    stream_parser(options)
    request_template(options)
    require_positive(float(option(options, "first_token_timeout", 30.0)), "--first-token-timeout")
    require_positive(float(option(options, "stream_timeout", 120.0)), "--stream-timeout")
    if int(option(options, "history_turns", 2)) < 0:
        raise InputError("--history-turns: must be 0 or more")
    if int(option(options, "max_tokens", 0)) < 0:
        raise InputError("--max-tokens: must be 0 (server default) or more")


def stream_parser(options: Any) -> StreamParser:
    """A fresh parser for one answer, as the options describe the wire format."""
    return make_parser(
        option(options, "stream_format", "openai"),
        option(options, "stream_text_path", "") or None,
        option(options, "stream_usage_path", "") or None,
    )


def request_template(options: Any) -> dict[str, Any]:
    """The request body without messages: model, stream flags, limits and --extra-body."""
    body: dict[str, Any] = {"model": option(options, "model", "demobot"), "stream": True}
    if option(options, "stream_format", "openai") == "openai":
        body["stream_options"] = {"include_usage": True}
    if max_tokens := int(option(options, "max_tokens", 0)):
        body["max_tokens"] = max_tokens
    if temperature := str(option(options, "temperature", "")).strip():
        try:
            body["temperature"] = float(temperature)
        except ValueError:
            raise InputError(f"--temperature: {temperature!r} is not a number") from None
    if extra := str(option(options, "extra_body", "")).strip():
        try:
            extra_body = json.loads(extra)
        except json.JSONDecodeError as error:
            raise InputError(f"--extra-body: not valid JSON ({error.msg})") from None
        if not isinstance(extra_body, dict):
            raise InputError('--extra-body: must be a JSON object like {"top_p": 0.9}')
        body.update(extra_body)
    return body


class StreamingChatUser(ChatUser):
    """Asks questions with streaming on and times the answer as its bytes arrive.

    Works with any OpenAI-compatible server by default; ``--stream-format`` covers generic SSE, NDJSON
    (Ollama) and raw text streams. An answer fails when the status is not 2xx, it carries no content,
    it stops before the server says it is done, an error event arrives, or it exceeds
    ``--first-token-timeout`` or ``--stream-timeout``.
    """

    stream_path: str = "/v1/chat/completions"
    """Path of the streaming endpoint (--stream-path)."""

    first_token_timeout_s: float = 30.0
    """Seconds to wait for the first token (--first-token-timeout)."""

    stream_timeout_s: float = 120.0
    """Seconds a whole answer may take (--stream-timeout)."""

    history_turns: int = 2
    """Earlier question/answer pairs sent with each question (--history-turns)."""

    conversation_turns: int = 5
    """Questions per conversation before starting a new one (--conversation-turns)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        self.stream_path = option(options, "stream_path", self.stream_path)
        self.first_token_timeout_s = float(option(options, "first_token_timeout", self.first_token_timeout_s))
        self.stream_timeout_s = float(option(options, "stream_timeout", self.stream_timeout_s))
        self.history_turns = int(option(options, "history_turns", self.history_turns))
        self.conversation_turns = int(option(options, "conversation_turns", self.conversation_turns))
        self.template = request_template(options)
        self.system_prompt = option(options, "system_prompt", "")
        self.api_key = option(options, "api_key", "") or next(
            (os.environ[name] for name in API_KEY_VARIABLES if os.environ.get(name)), ""
        )
        self.history: list[dict[str, str]] = []
        self.turn = 0
        self.stream_client = StreamingHttpClient(self.host, self.stream_timeout_s, insecure=self.insecure)

    def on_stop(self) -> None:
        self.stream_client.close()

    @task
    def ask(self) -> None:
        """Ask one question with streaming on and report its timings."""
        self.begin_exchange()
        if self.turn >= self.conversation_turns:
            self.history, self.turn = [], 0
        prompt = self.settings.prompts.pick(self.rng)
        question = {"role": "user", "content": prompt.text}
        try:
            headers = self._headers()
        except AuthFailed:
            return  # the failed login is in the stats already
        body = {**self.template, "messages": [*self._context(), question]}
        record, answer = self._stream(f"chat:{prompt.category}", json.dumps(body).encode(), headers)
        self.turn += 1
        if self.history_turns and not record.error:
            turn = [question, {"role": "assistant", "content": answer}]
            self.history = [*self.history, *turn][-2 * self.history_turns :]

    def _context(self) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return system + self.history

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        headers.update(self.auth_headers())
        if self.api_key and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _stream(self, name: str, body: bytes, headers: dict[str, str]) -> tuple[StreamRecord, str]:
        """Send one streamed request, read it to the end, fire its TTFT and E2E events."""
        parser = stream_parser(self.environment.parsed_options)
        record = StreamRecord(name=name, started_at=time.time(), user=self.user_number)
        text: list[str] = []
        response = None
        # With an arrival rate, times count from the scheduled start (see users/common/pacing.py).
        start = time.perf_counter() - self.request_event.lateness_ms / 1000
        try:
            with gevent.Timeout(self.stream_timeout_s, StreamFailure("stream timeout")):
                with gevent.Timeout(self.first_token_timeout_s, StreamFailure("first token timeout")):
                    response = self.stream_client.post(self.stream_path, body, headers)
                    record.request_id = str(response.get("x-request-id") or "")
                    if failure := status_failure(response.status_code):
                        raise StreamFailure(failure)
                    ending = _read(response, parser, record, text, start, until_first_token=True)
                if ending == FIRST_TOKEN:
                    ending = _read(response, parser, record, text, start, until_first_token=False)
            record.e2e_ms = (time.perf_counter() - start) * 1000
            if not record.chunk_times_ms:
                raise StreamFailure("no content in the answer")
            if ending == BODY_ENDED and parser_expects_done(self.environment.parsed_options):
                raise StreamFailure("stream ended before the server said it was done")
        except StreamFailure as failure:
            record.error = str(failure)
        except (OSError, HTTPParseError) as error:  # connection trouble: a clear name instead of a traceback
            record.error = ("stream cut off: " if record.chunk_times_ms else "") + connection_failure(error)
        finally:
            if response is not None and record.error:
                abandon(response)
        if record.chunk_times_ms:
            record.ttft_ms = record.chunk_times_ms[0]
        if record.e2e_ms is None:
            record.e2e_ms = (time.perf_counter() - start) * 1000
        self._fire(record)
        if self.auth.can_refresh and record.error == "HTTP 401 Unauthorized":
            self.auth.invalidate()
        return record, "".join(text)

    def _fire(self, record: StreamRecord) -> None:
        request = self.environment.events.request  # not self.request_event: the times include lateness already
        if record.ttft_ms is not None:
            request.fire(
                request_type="TTFT",
                name=record.name,
                response_time=record.ttft_ms,
                response_length=0,
                exception=None,
                context={},
                start_time=record.started_at,
            )
        request.fire(
            request_type="E2E",
            name=record.name,
            response_time=record.e2e_ms,
            response_length=record.output_tokens,
            exception=StreamFailure(record.error) if record.error else None,
            context={records.RECORD: record},
            start_time=record.started_at,
        )
