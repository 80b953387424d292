"""What the server's WebSocket messages mean: the protocol's field names, one frame read at a time, and the
book of prompts in flight that replies are matched to (by id, else oldest first). Pure: no timing, no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import gevent

from core.errors import InputError
from core.options import option
from users.common.answers import MISSING, dig
from users.llm.stream_metrics import StreamRecord

ERROR_TEXT_LIMIT = 80
"""Failure names quote at most this much of a server's error message."""


@dataclass(frozen=True, slots=True)
class WsFields:
    """The JSON field names of the chat protocol and the fixed part of every prompt."""

    prompt: str = "message"
    request_id: str = "id"
    reply: str = "answer"
    delta: str = "delta"
    done: str = "done"
    error: str = "error"
    extra: dict[str, Any] = field(default_factory=dict)


def ws_fields(options: Any) -> WsFields:
    """The protocol's field names from the options; raises InputError for a bad --ws-extra."""
    extra_text = str(option(options, "ws_extra", "")).strip()
    extra: dict[str, Any] = {}
    if extra_text:
        try:
            extra = json.loads(extra_text)
        except json.JSONDecodeError as error:
            raise InputError(f"--ws-extra: not valid JSON ({error.msg})") from None
        if not isinstance(extra, dict):
            raise InputError('--ws-extra: must be a JSON object like {"stream": true}')
    if not str(option(options, "ws_prompt_field", "message")).strip():
        raise InputError("--ws-prompt-field: must not be empty")
    return WsFields(
        prompt=option(options, "ws_prompt_field", "message"),
        request_id=option(options, "ws_id_field", "id"),
        reply=option(options, "ws_reply_field", "answer"),
        delta=option(options, "ws_delta_field", "delta"),
        done=option(options, "ws_done_field", "done"),
        error=option(options, "ws_error_field", "error"),
        extra=extra,
    )


@dataclass(frozen=True, slots=True)
class Frame:
    """What one server message means for the prompts in flight."""

    kind: str
    """``delta`` (a piece of a streamed reply), ``reply`` (a whole reply), ``done``, ``error`` or ``ignored``."""
    request_id: str | None = None
    text: str = ""
    done: bool = False


def read_frame(payload: bytes, fields: WsFields) -> Frame:
    """Classify one server message (pure: no timing, no state)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return Frame("reply", text=payload.decode("utf-8", "replace"), done=True)
    if not isinstance(body, dict):
        return Frame("reply", text=payload.decode("utf-8", "replace"), done=True)
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
