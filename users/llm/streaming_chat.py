"""StreamingChatUser: a person watching a streamed answer arrive, timed token by token.

Each question becomes two rows in Locust's stats: ``TTFT chat:<category>`` (time to the first token)
and ``E2E chat:<category>`` (time to the end of the answer, where failures are counted). The full
timings of every answer travel with the E2E event as a StreamRecord, for the LLM metrics plugin.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import gevent
from geventhttpclient.response import HTTPParseError
from locust import task

from core.errors import InputError
from core.options import require_path, require_positive
from core.settings import setting
from users.auth.providers import AuthFailed
from users.common import records
from users.common.api_choice import ApiSettings
from users.common.chat_base import ChatUser, chat_setup
from users.common.http_answers import request_id
from users.common.http_body import abandon
from users.common.http_failures import connection_failure, status_failure
from users.common.probe import failure_name, judged, run_probe
from users.common.request_headers import merged, request_headers
from users.llm.answer_reader import BODY_ENDED, SERVER_DONE, AnswerReader, StreamFailure
from users.llm.api_presets import (
    ALL_FORMATS,
    FORMATS_WITH_DONE,
    OPENAI_KEY_VARIABLES,
    PRESETS,
    ApiPreset,
    request_body,
    stream_parser,
)
from users.llm.first_tokens import read_first_tokens
from users.llm.http_stream import RedirectLoop, StreamingHttpClient
from users.llm.stream_metrics import StreamRecord
from users.llm.stream_parsers import StreamParser
from users.llm.stream_probe import StreamTap, wrong_format

API_KEY_VARIABLES = OPENAI_KEY_VARIABLES
"""Environment variables (or .env entries) that provide the API key when --api-key is not given."""


@dataclass(frozen=True)
class StreamSettings(ApiSettings):
    """StreamingChatUser's options: the API (--api, shared), its endpoint and wire format, the request body and the
    time limits."""

    stream_path: str = setting("", "Path of the streaming chat endpoint (default: the --api preset's)", web_ui=True)
    stream_format: str = setting(
        "", f"Wire format of the stream (default: the --api preset's): {', '.join(ALL_FORMATS)}"
    )
    stream_text_path: str = setting("", "Dotted JSON path of the text delta (sse, ndjson)")
    stream_usage_path: str = setting("", "Dotted JSON path of the output token count")
    model: str = setting("demobot", "Model name sent with each request", web_ui=True)
    max_tokens: int = setting(0, "Most tokens per answer (0 = the server's default; Anthropic: 1024)", web_ui=True)
    temperature: str = setting("", "Sampling temperature to send (empty = not sent)")
    system_prompt: str = setting("", "System message put before every conversation")
    extra_body: str = setting("", 'JSON object merged into every request, e.g. {"top_p": 0.9}')
    history_turns: int = setting(2, "Earlier turns sent along with each question")
    first_token_timeout: float = setting(30.0, "Seconds to wait for the first output (answer or reasoning)")
    stream_timeout: float = setting(120.0, "Seconds a whole answer may take")

    def check(self) -> None:
        require_path(self.path, "--stream-path")
        self.parser()
        _ = self.template, self.extra
        require_positive(self.first_token_timeout, "--first-token-timeout")
        require_positive(self.stream_timeout, "--stream-timeout")
        if self.history_turns < 0:
            raise InputError("--history-turns: must be 0 or more")
        if self.max_tokens < 0:
            raise InputError("--max-tokens: must be 0 (server default) or more")

    @property
    def preset(self) -> ApiPreset:
        return PRESETS.get(self.api, PRESETS["openai-chat"])  # a REST preset (rasa) leaves streaming as it is

    @property
    def path(self) -> str:
        """--stream-path, else the preset's."""
        return self.stream_path.strip() or self.preset.path

    @property
    def format(self) -> str:
        """--stream-format, else the preset's."""
        return self.stream_format.strip().lower() or self.preset.stream_format

    def parser(self) -> StreamParser:
        """A fresh parser for one answer, as the options describe the wire format."""
        return stream_parser(self.format, self.stream_text_path or None, self.stream_usage_path or None)

    @property
    def expects_done(self) -> bool:
        """Whether an answer that ends without the server's done marker was cut short."""
        return self.format in FORMATS_WITH_DONE

    @cached_property
    def template(self) -> dict[str, Any]:
        """The start of every request body: model, stream flags and temperature."""
        body: dict[str, Any] = {"model": self.model, "stream": True}
        if self.format == "openai" and self.preset.body == "chat":
            body["stream_options"] = {"include_usage": True}
        if temperature := self.temperature.strip():
            try:
                body["temperature"] = float(temperature)
            except ValueError:
                raise InputError(f"--temperature: {temperature!r} is not a number") from None
        return body

    @cached_property
    def extra(self) -> dict[str, Any]:
        """--extra-body, merged into every request last."""
        if not (extra := self.extra_body.strip()):
            return {}
        try:
            extra_body = json.loads(extra)
        except json.JSONDecodeError as error:
            raise InputError(f"--extra-body: not valid JSON ({error.msg})") from None
        if not isinstance(extra_body, dict):
            raise InputError('--extra-body: must be a JSON object like {"top_p": 0.9}')
        return extra_body

    def body(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """One request's body in the preset's shape, the conversation so far ending with the question."""
        shape = self.preset.body
        body = request_body(shape, self.template, self.max_tokens, self.system_prompt, messages)
        body.update(self.extra)
        return body


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register StreamingChatUser's options."""
    StreamSettings.add_arguments(parser)


def check_options(options: Any) -> None:
    """Raise InputError for a bad StreamingChatUser option."""
    StreamSettings.read(options)


class StreamingChatUser(ChatUser):
    """Asks questions with streaming on and times the answer as its bytes arrive.

    Works with any OpenAI-compatible server by default; ``--stream-format`` covers generic SSE, NDJSON
    (Ollama) and raw text streams. An answer fails when the status is not 2xx, it carries no content,
    it stops before the server says it is done, an error event arrives, or it exceeds
    ``--first-token-timeout`` or ``--stream-timeout``.
    """

    exchange_type = "E2E"
    api_key_variables = API_KEY_VARIABLES

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        self.stream_settings = StreamSettings.read(options)
        preset = self.stream_settings.preset
        if preset.key_header or preset.key_variables != OPENAI_KEY_VARIABLES:  # e.g. Anthropic's x-api-key
            self.sent_headers = request_headers(options, preset.key_variables, preset.key_header)
        self.history: list[dict[str, str]] = []
        self.turn = 0
        self.stream_client = StreamingHttpClient(self.host, self.stream_settings.stream_timeout, insecure=self.insecure)

    @classmethod
    def probe(cls, environment: Any) -> str | None:
        """Ask one question before the load, counted nowhere (users/common/probe.py): what is misconfigured, or None."""
        tap, settings = StreamTap(), StreamSettings.read(environment.parsed_options)

        def ask_tapped(user: StreamingChatUser) -> None:
            user.stream_settings = tap.settings(user.stream_settings)
            user.ask()

        events = run_probe(cls, environment, ask_tapped)
        failure = next((failure_name(event) for event in events if event["request_type"] == "E2E"), None)
        accounts = len(chat_setup(environment.parsed_options).accounts)
        return wrong_format(failure, bytes(tap.first_bytes), settings.format, settings.stream_text_path) or judged(
            events, cls.__name__, accounts, path=f"POST {settings.path}"
        )

    def on_stop(self) -> None:
        super().on_stop()
        self.stream_client.close()

    @task
    def ask(self) -> None:
        """Ask one question with streaming on and report its timings."""
        self.begin_exchange()
        if self.turn >= self.settings.conversation_turns:
            self.history, self.turn = [], 0
        prompt = self.settings.prompts.pick(self.rng)
        question = {"role": "user", "content": prompt.text}
        try:
            headers = self._headers()
        except AuthFailed:
            return  # the failed login is in the stats already
        body = self.stream_settings.body([*self.history, question])
        record, answer = self._stream(f"chat:{prompt.category}", json.dumps(body).encode(), headers)
        self.turn += 1
        history_turns = self.stream_settings.history_turns
        if history_turns and not record.error:
            turn = [question, {"role": "assistant", "content": answer}]
            self.history = [*self.history, *turn][-2 * history_turns :]

    def _headers(self) -> dict[str, str]:
        stream = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        return merged(stream, self.stream_settings.preset.headers, self.sent_headers, self.auth_headers())

    def _stream(self, name: str, body: bytes, headers: dict[str, str]) -> tuple[StreamRecord, str]:
        """Send one streamed request, read it to the end, fire its TTFT and E2E events."""
        settings = self.stream_settings
        record = StreamRecord(name=name, started_at=time.time(), user=self.user_number)
        response = reader = None
        ending = ""
        # With an arrival rate, times count from the scheduled start (see users/common/pacing.py).
        start = time.perf_counter() - self.request_event.lateness_ms / 1000
        try:
            with gevent.Timeout(settings.stream_timeout, StreamFailure("stream timeout")):
                first_token = gevent.Timeout(settings.first_token_timeout, StreamFailure("first token timeout"))
                with first_token:  # the reader cancels it at the first token: the user sleeps once, to the end
                    response = self.stream_client.post(settings.path, body, headers)
                    record.request_id = request_id(response)
                    self.retry_after.note(response.status_code, response)
                    if failure := status_failure(response.status_code):
                        raise StreamFailure(failure)
                    reader = AnswerReader(response, settings.parser(), record, start, self.answer_settings)
                    ending = reader.read(first_token)
            record.e2e_ms = reader.last_ms
            if not record.chunk_times_ms:
                raise StreamFailure("no content in the answer")
            if ending == BODY_ENDED and settings.expects_done:
                raise StreamFailure("stream ended before the server said it was done")
        except (StreamFailure, RedirectLoop) as failure:
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
        read_first_tokens()  # a poll point (users/llm/first_tokens.py): firing the events kept the loop busy
        if ending == SERVER_DONE and reader is not None and not record.error:
            self.in_flight.end()  # the answer is recorded: what follows the done marker is the connection's
            reader.read_to_the_end()
        if self.auth.can_refresh and record.error == "HTTP 401 Unauthorized":
            self.auth.invalidate()
        return record, "".join(reader.text) if reader else ""

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
