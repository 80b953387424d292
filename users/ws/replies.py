"""What the server's WebSocket messages mean: the protocol's field names, one frame read at a time, and the
book of prompts in flight that replies are matched to (by id, else oldest first). Pure: no timing, no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import gevent

from core.errors import InputError
from core.fast_json import loads
from core.settings import Settings, setting
from users.common.answers import MISSING, dig
from users.llm.stream_metrics import StreamRecord

ERROR_TEXT_LIMIT = 80
"""Failure names quote at most this much of a server's error message."""

UNREADABLE = "unreadable"
"""The kind of a frame the protocol does not allow; its text is the failure name, one of these:"""
NOT_JSON, NOT_AN_OBJECT, NOT_TEXT = "reply is not JSON", "reply is not a JSON object", "reply is not UTF-8 text"


@dataclass(frozen=True)
class WsFieldSettings(Settings):
    """The chat protocol's options: its JSON field names and the fixed part of every prompt."""

    ws_prompt_field: str = setting("message", "JSON field that carries the prompt", web_ui=True)
    ws_id_field: str = setting("id", "JSON field of the request id (empty = send none)")
    ws_reply_field: str = setting("answer", "Dotted JSON path of a whole reply", web_ui=True)
    ws_delta_field: str = setting("delta", "Dotted JSON path of a streamed reply's piece")
    ws_done_field: str = setting("done", "JSON field that marks the end of a reply")
    ws_error_field: str = setting("error", "JSON field of an error reply")
    ws_extra: str = setting("", 'JSON object merged into every prompt, e.g. {"stream": true}')
    ws_plain_replies: bool = setting(
        False, "Take a UTF-8 text reply that is not JSON as a whole answer (else it fails as 'reply is not JSON')"
    )

    def check(self) -> None:
        _prompt_extra(self.ws_extra)
        if not self.ws_prompt_field.strip():
            raise InputError("--ws-prompt-field: must not be empty")

    @cached_property
    def fields(self) -> WsFields:
        """The field names and the parsed --ws-extra, as the frame reader uses them."""
        return WsFields(
            prompt=self.ws_prompt_field,
            request_id=self.ws_id_field,
            reply=self.ws_reply_field,
            delta=self.ws_delta_field,
            done=self.ws_done_field,
            error=self.ws_error_field,
            extra=_prompt_extra(self.ws_extra),
            plain=self.ws_plain_replies,
        )


def _prompt_extra(text: str) -> dict[str, Any]:
    """--ws-extra as a dict; raises InputError when it is not a JSON object."""
    text = text.strip()
    if not text:
        return {}
    try:
        extra = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"--ws-extra: not valid JSON ({error.msg})") from None
    if not isinstance(extra, dict):
        raise InputError('--ws-extra: must be a JSON object like {"stream": true}')
    return extra


@dataclass(frozen=True, slots=True)
class WsFields:
    """The JSON field names of the chat protocol and the fixed part of every prompt (defaults: the options')."""

    prompt: str = WsFieldSettings.ws_prompt_field
    request_id: str = WsFieldSettings.ws_id_field
    reply: str = WsFieldSettings.ws_reply_field
    delta: str = WsFieldSettings.ws_delta_field
    done: str = WsFieldSettings.ws_done_field
    error: str = WsFieldSettings.ws_error_field
    extra: dict[str, Any] = field(default_factory=dict)
    plain: bool = WsFieldSettings.ws_plain_replies
    """Whether a reply that is not JSON is a whole answer in plain text (--ws-plain-replies)."""


def ws_fields(options: Any) -> WsFields:
    """The protocol's field names from the options; raises InputError for a bad --ws-extra."""
    return WsFieldSettings.read(options).fields


@dataclass(frozen=True, slots=True)
class Frame:
    """What one server message means for the prompts in flight."""

    kind: str
    """``delta`` (a piece of a streamed reply), ``reply`` (a whole reply), ``done``, ``error``, ``ignored``, or
    ``unreadable`` (not what the protocol allows: ``text`` is the failure name)."""
    request_id: str | None = None
    text: str = ""
    done: bool = False


def read_frame(payload: bytes, fields: WsFields) -> Frame:
    """Classify one server message (pure: no timing, no state)."""
    try:
        body = loads(payload)  # bytes: UTF-8 (or -16/-32) JSON, as text or binary messages
    except ValueError:  # UnicodeDecodeError included
        return _plain_reply(payload, fields, NOT_JSON)
    if not isinstance(body, dict):
        return _plain_reply(payload, fields, NOT_AN_OBJECT)
    found = body.get(fields.request_id) if fields.request_id else None
    request_id = None if found is None else str(found)
    done = bool(body.get(fields.done)) if fields.done else False
    if fields.error and body.get(fields.error):
        error = body[fields.error]
        text = error.get("message", error) if isinstance(error, dict) else error
        return Frame("error", request_id, str(text)[:ERROR_TEXT_LIMIT], True)
    if fields.delta and (delta := dig(body, fields.delta)) is not MISSING and delta is not None:
        return Frame("delta", request_id, str(delta), done)
    if fields.reply and (reply := dig(body, fields.reply)) is not MISSING and reply is not None:
        return Frame("reply", request_id, str(reply), True)
    if done:
        return Frame("done", request_id, done=True)
    return Frame("ignored", request_id)


def _plain_reply(payload: bytes, fields: WsFields, failure: str) -> Frame:
    """A reply that is not a JSON object: a whole answer in plain text with --ws-plain-replies, else a failure."""
    if not fields.plain:
        return Frame(UNREADABLE, text=failure, done=True)
    try:
        return Frame("reply", text=payload.decode("utf-8"), done=True)
    except UnicodeDecodeError:
        return Frame(UNREADABLE, text=NOT_TEXT, done=True)


@dataclass(slots=True)
class PendingReply:
    """A prompt in flight: when it was sent and what has come back so far."""

    request_id: str
    name: str
    start: float
    """``perf_counter()`` instant the prompt was sent (earlier by any pacing lateness)."""
    record: StreamRecord
    pieces: list[str] = field(default_factory=list)
    streamed: bool = False
    timer: gevent.Greenlet | None = None


class ReplyBook:
    """The prompts in flight on one connection, matched to replies by id or else oldest first."""

    SETTLED_MEMORY = 1000
    """Ids of finished prompts remembered, so that a late or second reply is not taken for another's."""

    def __init__(self) -> None:
        self.pending: dict[str, PendingReply] = {}
        self.settled: set[str] = set()

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, reply: PendingReply) -> None:
        self.pending[reply.request_id] = reply

    def match(self, frame: Frame) -> PendingReply | None:
        """The prompt a frame answers: the one with its id, else the oldest; None for a stray frame."""
        if frame.request_id is not None:
            if frame.request_id in self.pending:
                return self.pending[frame.request_id]
            if frame.request_id in self.settled:
                return None  # a reply to a prompt that timed out or was answered already
        return next(iter(self.pending.values()), None)

    def take(self, request_id: str) -> PendingReply | None:
        """Remove a prompt from the book, remembering its id."""
        reply = self.pending.pop(request_id, None)
        if reply is not None:
            if len(self.settled) >= self.SETTLED_MEMORY:
                self.settled.clear()
            self.settled.add(request_id)
        return reply

    def take_all(self) -> list[PendingReply]:
        replies, self.pending = list(self.pending.values()), {}
        return replies
