"""RestChatUser: a person chatting with a bot over a plain JSON HTTP endpoint, one answer per question."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from locust import task

from core.errors import InputError
from core.options import add_option, option, require_path
from users.auth.providers import AuthFailed
from users.common.answers import MISSING, dig
from users.common.chat_base import ChatUser
from users.common.http_failures import response_failure
from users.http import bot_targets as many_bots
from users.http.bot_targets import BOT_PLACEHOLDER, bot_targets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register RestChatUser's options, the many-bots ones included."""
    many_bots.add_arguments(parser)
    add_option(parser, "--chat-path", default="/api/chat", help="Path of the chat endpoint")
    add_option(parser, "--question-field", default="message", help="JSON field that carries the question")
    add_option(
        parser, "--answer-field", default="answer", help="JSON field (dotted path, e.g. data.answer) of the answer"
    )
    add_option(parser, "--session-field", default="session_id", help="JSON field of the conversation id")
    add_option(
        parser,
        "--conversation-turns",
        type=int,
        default=5,
        help="Questions per conversation before a user starts a new one",
    )


def check_options(options: Any) -> None:
    """Raise InputError for a bad RestChatUser option."""
    many_bots.check_options(options)
    if int(option(options, "conversation_turns", 5)) < 1:
        raise InputError("--conversation-turns: must be 1 or more")
    require_path(option(options, "chat_path", "/api/chat"), "--chat-path", allow_url=True)
    for flag in ("question_field", "answer_field", "session_field"):
        if not str(option(options, flag, "x")).strip():
            raise InputError(f"--{flag.replace('_', '-')}: must not be empty")


class RestChatUser(ChatUser):
    """Signs in per --auth, asks questions from the prompt source and checks each answer.

    A question counts as failed when the status is not 2xx, the body is not JSON, or the answer field is
    missing or empty. Questions of one conversation share a session id; after --conversation-turns
    questions the user starts a new conversation.
    """

    chat_path: str = "/api/chat"
    """Path of the chat endpoint (--chat-path)."""

    question_field: str = "message"
    """JSON field that carries the question (--question-field)."""

    answer_field: str = "answer"
    """Dotted path of the answer in the response JSON (--answer-field)."""

    session_field: str = "session_id"
    """JSON field of the conversation id, sent back on every later turn (--session-field)."""

    conversation_turns: int = 5
    """Questions per conversation (--conversation-turns)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        for name in ("chat_path", "question_field", "answer_field", "session_field", "conversation_turns"):
            setattr(self, name, option(options, name, getattr(self, name)))
        self.session_id: str | None = None
        self.turn = 0
        self.questions = 0
        self.bots = bot_targets(options)
        self.check_answers = bool(option(options, "check_answers", False))
        self.expected_answer: str | None = None

    @task
    def ask(self) -> None:
        """Ask one question and judge the answer."""
        self.begin_exchange()
        if self.turn >= self.conversation_turns:
            self.session_id, self.turn = None, 0
        prompt = self.settings.prompts.pick(self.rng)
        payload: dict[str, Any] = {self.question_field: prompt.text}
        if self.session_id:
            payload[self.session_field] = self.session_id
        path, name = self.chat_path, f"chat:{prompt.category}"
        if self.bots is not None:
            bot_id = self.bots.pick(prompt, self.user_number + self.questions, self.rng)
            path, name = path.replace(BOT_PLACEHOLDER, bot_id), self.bots.request_name(name, bot_id)
        self.expected_answer = prompt.fields.get("answer") if self.check_answers else None
        self.questions += 1
        try:
            self._post_question(path, payload, name, retry_on_401=self.auth.can_refresh)
        except AuthFailed:
            return  # the failed login is in the stats already; try again after the think time
        self.turn += 1

    def _post_question(self, path: str, payload: dict[str, Any], name: str, retry_on_401: bool) -> None:
        headers = self.auth_headers()
        with self.client.post(path, json=payload, headers=headers, name=name, catch_response=True) as resp:
            if resp.status_code == 401 and retry_on_401:
                resp.failure("HTTP 401 Unauthorized (token rejected, signing in again)")
                self.auth.invalidate()
            else:
                failure = response_failure(resp) or self._answer_failure(resp)
                if failure:
                    resp.failure(failure)
                else:
                    resp.success()
                return
        self._post_question(path, payload, name, retry_on_401=False)

    def _answer_failure(self, resp: Any) -> str | None:
        try:
            body = resp.json()
        except ValueError:
            return "response is not JSON"
        answer = dig(body, self.answer_field)
        if answer is MISSING:
            return f"no {self.answer_field!r} in response"
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            return "empty answer"
        if self.expected_answer and self.expected_answer not in str(answer):
            return "wrong answer"
        session = body.get(self.session_field) if isinstance(body, dict) else None
        self.session_id = str(session) if session else (self.session_id or str(uuid.uuid4()))
        return None
