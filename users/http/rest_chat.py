"""RestChatUser: a person chatting with a bot over a plain JSON HTTP endpoint, one answer per question."""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from locust import task

from core.errors import InputError
from core.options import require_path
from core.settings import setting
from users.auth.providers import AuthFailed
from users.common.answers import MISSING, dig
from users.common.api_choice import ApiSettings
from users.common.chat_base import ChatUser, chat_setup
from users.common.http_answers import json_answer
from users.common.http_failures import NOT_JSON
from users.common.probe import failure_name, judged, keeping_answers, missing_field, run_probe
from users.http.body_template import BodyTemplate, parse_template
from users.http.bot_targets import BOT_PLACEHOLDER, BotSettings, BotTargets, bot_targets
from users.http.rest_presets import REST_PRESETS


@dataclass(frozen=True)
class RestChatSettings(BotSettings):
    """RestChatUser's options: the many-bots ones, then the endpoint and its JSON fields."""

    check_answers: bool = setting(False, 'Fail an answer that does not contain the prompt\'s "answer" field')
    chat_path: str = setting("/api/chat", "Path of the chat endpoint", web_ui=True)
    question_field: str = setting("message", "JSON field that carries the question", web_ui=True)
    answer_field: str = setting("answer", "JSON field (dotted path, e.g. data.answer) of the answer", web_ui=True)
    session_field: str = setting("session_id", "JSON field of the conversation id")
    body_template: str = setting(
        "",
        "Request body as JSON (inline or @FILE) with {prompt}, {session_id}, {user}, {history}; replaces "
        '--question-field, e.g. \'{"sender": "{user}", "message": "{prompt}"}\'',
    )
    body_format: str = setting("json", "How the body is sent: json, or form (form-encoded)", choices=("json", "form"))

    def check(self) -> None:
        _ = self.bots, self.template
        require_path(self.chat_path, "--chat-path", allow_url=True)
        for name in ("question_field", "answer_field", "session_field"):
            if not getattr(self, name).strip():
                raise InputError(f"{self.flag(name)}: must not be empty")

    @cached_property
    def template(self) -> BodyTemplate | None:
        """The parsed --body-template, or None to send {question field, session field}."""
        return parse_template(self.body_template, form=self.body_format == "form")

    @cached_property
    def bots(self) -> BotTargets | None:
        """The bots the questions go to, or None when --chat-path has no {bot_id}."""
        return bot_targets(self, self.chat_path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register RestChatUser's options, the many-bots ones included."""
    RestChatSettings.add_arguments(parser)


def check_options(options: Any) -> None:
    """Raise InputError for a bad RestChatUser option."""
    rest_settings(options)


def rest_settings(options: Any) -> RestChatSettings:
    """RestChatUser's settings, with an --api preset's path, body and answer field where none was given."""
    settings = RestChatSettings.read(options)
    preset = REST_PRESETS.get(ApiSettings.read(options).api)
    if preset is None:
        return settings
    defaults = {item.name: item.default for item in fields(RestChatSettings)}
    chosen = {name: getattr(preset, name) for name in ("chat_path", "body_template", "answer_field")}
    settings = replace(
        settings, **{name: value for name, value in chosen.items() if getattr(settings, name) == defaults[name]}
    )
    settings.check()
    return settings


FORM = "application/x-www-form-urlencoded"


class RestChatUser(ChatUser):
    """Signs in per --auth, asks questions from the prompt source and checks each answer.

    A question counts as failed when the status is not 2xx, the body is not JSON (or not UTF-8), the answer
    field is missing or empty, or the exchange passes --request-timeout or --max-answer-mb. Questions of one
    conversation share a session id; after --conversation-turns questions the user starts a new conversation.
    """

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.rest_settings = rest_settings(environment.parsed_options)
        self.session_id: str | None = None
        self.turn = 0
        self.questions = 0
        self.expected_answer: str | None = None
        self.history: list[dict[str, str]] = []
        """This conversation's turns so far, for a --body-template with {history}."""

    @classmethod
    def probe(cls, environment: Any) -> str | None:
        """Ask one question before the load, counted nowhere (users/common/probe.py): what is misconfigured, or None."""
        answers: list[Any] = []
        events = run_probe(cls, environment, keeping_answers(cls.ask, answers))
        field = RestChatSettings.read(environment.parsed_options).answer_field
        if any(failure_name(event) == f"no {field!r} in response" for event in events):
            return missing_field(json_answer(answers[-1]), field, "--answer-field")
        return judged(events, cls.__name__, len(chat_setup(environment.parsed_options).accounts))

    @task
    def ask(self) -> None:
        """Ask one question and judge the answer."""
        self.begin_exchange()
        rest = self.rest_settings
        if self.turn >= self.settings.conversation_turns:
            self.session_id, self.turn = None, 0
        prompt = self.settings.prompts.pick(self.rng)
        payload = self._body(prompt.text)
        path, name = rest.chat_path, f"chat:{prompt.category}"
        if rest.bots is not None:
            bot_id = rest.bots.pick(prompt, self.user_number + self.questions, self.rng)
            path, name = path.replace(BOT_PLACEHOLDER, bot_id), rest.bots.request_name(name, bot_id)
        self.expected_answer = prompt.fields.get("answer") if rest.check_answers else None
        self.questions += 1
        try:
            self._post_question(path, payload, name, retry_on_401=self.auth.can_refresh)
        except AuthFailed:
            return  # the failed login is in the stats already; try again after the think time
        self.turn += 1

    def _body(self, question: str) -> dict[str, Any]:
        rest = self.rest_settings
        if rest.template is None:
            payload: dict[str, Any] = {rest.question_field: question}
            if self.session_id:
                payload[rest.session_field] = self.session_id
            return payload
        if self.turn == 0:
            self.history = []
        self.session_id = self.session_id or str(uuid.uuid4())
        self.history.append({"role": "user", "content": question})
        return rest.template.render(question, self.session_id, str(self.user_number), self.history[:-1])

    def _post_question(self, path: str, payload: dict[str, Any], name: str, retry_on_401: bool) -> None:
        headers = self.auth_headers()
        if self.rest_settings.body_format == "form":
            body = {"data": urlencode(payload), "headers": {**headers, "Content-Type": FORM}}
        else:
            body = {"json": payload, "headers": headers}
        with self.exchange("POST", path, name=name, **body) as resp:
            if resp.status_code == 401 and retry_on_401:
                resp.failure("HTTP 401 Unauthorized (token rejected, signing in again)")
                self.auth.invalidate()
            else:
                failure = resp.failure_name or self._answer_failure(resp)
                if failure:
                    resp.failure(failure)
                else:
                    resp.success()
                return
        self._post_question(path, payload, name, retry_on_401=False)

    def _answer_failure(self, resp: Any) -> str | None:
        try:
            body = json_answer(resp)
        except ValueError:  # not JSON, or not UTF-8
            return NOT_JSON
        answer_field = self.rest_settings.answer_field
        answer = dig(body, answer_field)
        if answer is MISSING:
            return f"no {answer_field!r} in response"
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            return "empty answer"
        if self.expected_answer and self.expected_answer not in str(answer):
            return "wrong answer"
        if self.rest_settings.template is not None and self.rest_settings.template.uses_history:
            self.history.append({"role": "assistant", "content": str(answer)})
        session = body.get(self.rest_settings.session_field) if isinstance(body, dict) else None
        self.session_id = str(session) if session else (self.session_id or str(uuid.uuid4()))
        return None
