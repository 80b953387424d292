"""One streamed answer read as its bytes arrive, its events filed as they come: StreamingChatUser's hot path.

On a plain socket the event loop itself reads the answer: the socket's watcher stays started for the whole answer,
and each time bytes arrive its callback reads them (the kernel's arrival stamp with them), parses and files them in
the loop's own greenlet. The user's greenlet sleeps until the answer's end: with the headers, two wake-ups an answer
instead of one per token (a greenlet switch each way and a watcher stopped and started per read); the first output
cancels the first-token timeout. Until it comes, the socket is also read at poll points between the loop's other
work (users/llm/first_tokens.py), so that a busy loop does not leave a first token unread until the next one merges
with it. A TLS socket, whose decrypted bytes the kernel does not see, is read by the user's greenlet, read after read
(``read_chunk``). An OpenAI stream's reads are taken in C where they can be (users/llm/compiled_reads.py): the
callback then makes one call per token, and the code here files only what that call leaves to it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent.hub import Waiter
from geventhttpclient.response import HTTPParseError

from users.common.arrival_clock import is_plain, receive
from users.common.http_answers import AnswerSettings
from users.common.http_body import abandon, feed, parsed_body, read_chunk
from users.common.http_failures import NOT_JSON
from users.llm.compiled_reads import compiled_reads
from users.llm.first_tokens import FirstTokens, first_tokens
from users.llm.stream_metrics import StreamRecord
from users.llm.stream_parsers import MALFORMED_JSON, Scanned, StreamEvent, StreamParser

SERVER_DONE, BODY_ENDED = "server done", "body ended"
"""Why reading a stream stopped."""

ERROR_TEXT_LIMIT = 80
"""Failure names quote at most this much of a server's error message."""

MAX_BYTES_WITHOUT_EVENT = 1 << 20
"""A stream that sends this much (1 MB) without one complete event (an endless line, a message that never
ends) fails as ``no event in 1 MB of stream``: the parser's buffer stays bounded whatever the server sends."""


DONE_GRACE_S = 0.5
"""After the server's done marker, how long the body's own end (a chunked body's last chunk, often sent on its own
just after the marker) may take to come. Read, it lets the connection be reused; a server that never sends it costs
its connection, not the answer."""

BODY_NOT_ENDED = (
    f"the chatbot did not end an answer's body within {DONE_GRACE_S:g} s of its done marker: each such answer costs"
    f" its connection (the next question opens a new one) and holds its user {DONE_GRACE_S:g} s longer (shown once)"
)

logger = logging.getLogger("chatswarm")


class StreamFailure(Exception):
    """A streamed answer that went wrong; the message is its failure name."""


@dataclass
class AnswerReader:
    """Reads one streamed answer as its bytes arrive and files its events; the whole answer stays under the cap."""

    response: Any
    parser: StreamParser
    record: StreamRecord
    start: float
    """perf_counter() of the request start: times are measured from it."""
    limits: AnswerSettings
    text: list[str] = field(default_factory=list)
    received: int = 0
    last_ms: float | None = None
    """When the newest bytes read so far arrived (ms from the start): the answer's end once reading stops."""
    _since_event: int = 0
    _until_first_token: bool = False
    """No output has been filed yet: the compiled reads leave the first to ``_take``, which notes it."""
    _first_token_timer: Any = None
    """The first-token timeout (``read``): cancelled at the first output."""
    _watcher: Any = None
    _polled_fd: int = -1
    """The socket while it is in the poll points' set (users/llm/first_tokens.py), else -1."""
    _waiter: Any = None
    _chunks: Any = None
    """The answer's reads taken in C (users/llm/compiled_reads.py), where they can be; else None."""
    _in_the_loop: bool = False
    _first_tokens: FirstTokens = field(default_factory=first_tokens)
    """This loop's answers waiting for their first token (users/llm/first_tokens.py)."""

    def read(self, first_token_timer: gevent.Timeout | None = None) -> str:
        """Read the answer to its end; returns why reading stopped. ``first_token_timer`` (started: the first-token
        timeout) is cancelled once the first output has come."""
        self._first_token_timer, self._until_first_token = first_token_timer, True
        response = self.response
        sock = response._sock
        while response._body_buffer or response.message_complete or sock is None or not is_plain(sock):
            data, arrived = read_chunk(response)  # what is parsed already, the end, or a TLS read
            if (ending := self._take(data, arrived)) is not None:
                return ending
            sock = response._sock
        return self._read_in_the_loop(sock)

    def read_to_the_end(self) -> None:
        """After the done marker: read the body's end (what comes after the marker is not the answer's), so that the
        connection goes back to the pool, for DONE_GRACE_S at most; else the connection is closed."""
        response = self.response
        if response.message_complete:  # as most are: the body's end came with the marker
            return
        grace = gevent.Timeout(DONE_GRACE_S)
        try:
            with grace, contextlib.suppress(OSError, HTTPParseError):
                while not response.message_complete and response._sock is not None:
                    data, _ = read_chunk(response)
                    self.received += len(data)
                    if not data or self.received > self.limits.max_answer_bytes:
                        break
        except gevent.Timeout as fired:
            if fired is not grace:
                raise
            _warn_body_not_ended()  # not for a body cut off or over the cap: only one that kept its user waiting
        if not response.message_complete:
            abandon(response)

    def _read_in_the_loop(self, sock: Any) -> str:
        """Sleep while the loop reads the socket (``_readable``), until it has a reason to stop. Until the first token
        the socket is read at poll points too (``read_now``: users/llm/first_tokens.py)."""
        if not self._in_the_loop:  # nothing but the header read has taken bytes from the socket yet
            self._in_the_loop = True
            self._chunks = compiled_reads(self.response, self.parser, self.limits, MAX_BYTES_WITHOUT_EVENT)
        waiting = self._first_tokens
        waiting.read_ready()  # a poll point: this user has kept the loop busy
        self._waiter = Waiter()
        self._watcher = watcher = sock._read_event  # the socket's own watcher: nothing else waits on it meanwhile
        try:
            watcher.start(self._readable)
            try:
                if self._until_first_token:
                    self._polled_fd = sock.fileno()
                    waiting.add(self._polled_fd, self)
                return self._waiter.get()
            finally:
                watcher.stop()
                self._leave_the_poll_points()
        except BaseException:
            abandon(self.response)  # a failure, a timeout or a stop mid-answer
            raise

    def throw(self, error: BaseException) -> None:
        """Make the waiting user raise ``error``. gevent calls it too (as ``callback.__self__.throw``) when the socket
        is closed while it is watched, as it would wake a greenlet waiting on the socket itself."""
        self._waiter.throw(error)

    def read_now(self) -> None:
        """Read the socket now, out of the loop's turn (a poll point: users/llm/first_tokens.py). The loop wakes the
        user if reading stops: a poll point may be in another user's greenlet."""
        sock = self.response._sock
        if sock is None or sock.closed:  # closed by another greenlet: gevent wakes the user
            self._leave_the_poll_points()
        else:
            self._readable(deferred=True)

    def _readable(self, deferred: bool = False) -> None:
        """Bytes came (called by the event loop, in its own greenlet, which must never wait; or ``deferred`` at a poll
        point, perhaps in another user's greenlet): read, parse and file them, and wake the user once reading should
        stop."""
        response, chunks = self.response, self._chunks
        try:
            if chunks is None:
                data, arrived = receive(response._sock._sock, response.block_size)  # the system's socket: never waits
                ending = self._parsed(data, arrived)
            elif (read := chunks.read(self)) is None:
                return  # woken for nothing, or whole messages filed by the compiled reads as _take files them
            elif read[2] is not None:  # whole messages, read in C
                ending = self._take(*read)
                if ending is None and response.message_complete:  # the last chunk came with them
                    ending = self._take(b"", read[1])
            else:
                ending = self._parsed(read[0], read[1])
                chunks.scan = self.parser.scannable()
        except BlockingIOError:  # woken for nothing
            return
        except Exception as error:  # the user's greenlet raises it, as a read of its own would have
            wake, value = self.throw, error
        else:
            if ending is None:
                return
            wake, value = self._waiter.switch, ending  # reading stops
        if deferred:  # reading has stopped: no more reads and no first-token timeout before the user wakes
            self._watcher.stop()
            self._stop_waiting_for_the_first_token()
            self._waiter.hub.loop.run_callback(wake, value)
        else:
            wake(value)

    def _parsed(self, received: bytes, arrived: float) -> str | None:
        """Feed one read to the HTTP parser and file the body bytes it gives; why reading stops, or None."""
        response = self.response
        feed(response, received)
        if data := parsed_body(response):
            if (ending := self._take(data, arrived)) is not None or not response.message_complete:
                return ending
        elif not response.message_complete:
            return None  # only framing came: wait for the next read
        return self._take(b"", arrived)

    def _take(self, data: bytes, arrived: float, scanned: Scanned | None = None) -> str | None:
        """File one piece of the body (b"": its end) that arrived at ``arrived`` (what it says: ``scanned``, if the
        compiled reads read it); why reading stops, or None."""
        record = self.record
        if data or self.last_ms is None:  # the body's end (b"") is timed by the clock: keep the last bytes' time
            self.last_ms = max(arrived - self.start, 0.0) * 1000
        self.received += len(data)
        if self.received > self.limits.max_answer_bytes:
            raise StreamFailure(self.limits.over_cap)
        if scanned is None and data:
            scanned = self.parser.scan(data)
        if scanned is None:
            ending, any_event = self._file(self.parser.feed(data) if data else self.parser.close())
        else:
            ending, any_event = self._file_scanned(scanned)
        self._since_event = 0 if any_event else self._since_event + len(data)
        if self._since_event > MAX_BYTES_WITHOUT_EVENT:
            raise StreamFailure(f"no event in {MAX_BYTES_WITHOUT_EVENT >> 20} MB of stream")
        if self._until_first_token and record.ttfo_ms is not None:
            self._first_token_came()
        if ending is not None:
            return ending
        return None if data else BODY_ENDED

    def _first_token_came(self) -> None:
        """The first output is filed: the compiled reads file the rest."""
        self._until_first_token = False
        self._stop_waiting_for_the_first_token()

    def _stop_waiting_for_the_first_token(self) -> None:
        """The first-token timeout is over, and the socket leaves the poll points' set (users/llm/first_tokens.py)."""
        self._leave_the_poll_points()
        if self._first_token_timer is not None:
            self._first_token_timer.cancel()

    def _leave_the_poll_points(self) -> None:
        if self._polled_fd >= 0:
            self._first_tokens.discard(self._polled_fd, self)
            self._polled_fd = -1

    def _file(self, events: list[StreamEvent]) -> tuple[str | None, bool]:
        """File the events of the newest piece, which arrived at ``last_ms``: (SERVER_DONE at the done marker, else
        None; whether any event came)."""
        record, arrived_ms = self.record, self.last_ms
        for event in events:
            kind = event.kind
            if kind == "content":
                if record.ttfo_ms is None:
                    record.ttfo_ms = arrived_ms  # the first output of any kind, reasoning included
                if not event.reasoning:  # answer text: TTFT, ITL and the answer kept in the history
                    record.chunk_times_ms.append(arrived_ms)
                    self.text.append(event.text)
            elif kind == "usage":
                record.usage_tokens = event.output_tokens
            elif kind == "error":
                not_json = event.text == MALFORMED_JSON
                raise StreamFailure(NOT_JSON if not_json else f"error in stream: {event.text[:ERROR_TEXT_LIMIT]}")
            elif kind == "done":
                return SERVER_DONE, True
        return None, bool(events)

    def _file_scanned(self, scanned: Scanned) -> tuple[str | None, bool]:
        """File what ``StreamParser.scan`` read from the newest piece, as ``_file`` files the events it stands for."""
        texts, reasoning, usage, done = scanned
        record, arrived_ms = self.record, self.last_ms
        if (texts or reasoning) and record.ttfo_ms is None:
            record.ttfo_ms = arrived_ms
        if texts:
            record.chunk_times_ms.extend([arrived_ms] * len(texts))
            self.text.extend(texts)
        if usage is not None:
            record.usage_tokens = usage
        return SERVER_DONE if done else None, bool(texts or reasoning or usage is not None or done)


@functools.cache
def _warn_body_not_ended() -> None:
    """Say once per process that the chatbot leaves its bodies open after the done marker (what it costs the test)."""
    logger.warning(BODY_NOT_ENDED)
