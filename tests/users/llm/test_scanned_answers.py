"""The compiled reading of whole OpenAI messages (core/_speedups.c ``scan_openai``) against the Python parser it
stands in for: the same answers filed, and every piece it must not read left to the parser."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from geventhttpclient.response import HTTPResponse

from core import speedups
from tests.conftest import loopback_pair
from tests.users.llm.stream_bytes import USAGE, chat_chunk, chunkings, sse
from users.common.http_answers import AnswerSettings
from users.llm.answer_reader import MAX_BYTES_WITHOUT_EVENT, SERVER_DONE, AnswerReader, StreamFailure
from users.llm.compiled_reads import reads_in_c
from users.llm.stream_metrics import StreamRecord
from users.llm.stream_parsers import OpenAIChatParser, make_parser

ROLE = sse(chat_chunk({"role": "assistant", "content": ""}))
"""The first message of a vLLM answer: the parser reads it (the body's start), so the next piece is a fresh one."""

READ_BY_SCAN = {
    "one token": sse(chat_chunk({"content": " Hello"})),
    "three tokens in one read": sse(*(chat_chunk({"content": word}) for word in (" a", " b", "é 世界 🙂"))),
    "escapes": sse(chat_chunk({"content": 'a "quoted"\\ line\nnext \u00e9'})),
    "empty content": sse(chat_chunk({"content": ""})),
    "finish, usage and done": sse(chat_chunk({}, finish="stop"), chat_chunk(None, usage=USAGE), "[DONE]"),
    "usage beside the last token": sse(chat_chunk({"content": "x"}, usage=USAGE)),
    "null usage": sse(chat_chunk({"content": "x"}, usage=None)),
    "usage as a bool": sse(chat_chunk(None, usage={"completion_tokens": True})),
    "reasoning": sse(chat_chunk({"reasoning_content": "hm", "content": ""}), chat_chunk({"reasoning": "so"})),
    "reasoning and text": sse(chat_chunk({"reasoning_content": "hm", "content": "yes"})),
    "reasoning not text": sse(chat_chunk({"reasoning_content": 5, "content": ["no"]})),
    "legacy completion": sse({"choices": [{"text": " once", "index": 0}]}),
    "no choices key": sse({"id": "x"}),
    "done with spaces": b"data:  [DONE] \n\n",
    "content then done": sse(chat_chunk({"content": "last"}), "[DONE]"),
}

LEFT_TO_THE_PARSER = {
    "an error member": sse({"error": {"message": "overloaded"}}),
    "a null error member": sse(chat_chunk({"content": "x"}, error=None)),
    "vLLM's error object": sse({"object": "error", "message": "bad request"}),
    "malformed JSON": b"data: {nope\n\n",
    "a JSON list": sse([1, 2]),
    "choices not a list": sse({"choices": {"0": 1}}),
    "a choice not an object": sse({"choices": ["x"]}),
    "a delta not an object": sse({"choices": [{"delta": "x"}]}),
    "usage not an object": sse({"choices": [], "usage": [1]}),
    "CRLF": sse(chat_chunk({"content": "x"}), eol=b"\r\n"),
    "an unfinished message": b'data: {"choices": []}\n',
    "half a message": b'data: {"choi',
    "a comment": b": keep-alive\n\n",
    "an event name": b'event: error\ndata: {"message": "x"}\n\n',
    "two data lines": b'data: {"choices":\ndata: []}\n\n',
    "no space after the colon": b'data:{"choices":[]}\n\n',
    "not UTF-8": b'data: {"choices": [{"delta": {"content": "\xff"}}]}\n\n',
    "an empty data line": b"data: \n\n",
    "more after the done marker": sse("[DONE]", chat_chunk({"content": "late"})),
    "not UTF-8 after the done marker": sse("[DONE]") + b"data: \xff\n\n",
    "a lone surrogate": b'data: {"choices": [{"delta": {"content": "\\ud800"}}]}\n\n',
}

needs_build = pytest.mark.skipif(speedups.scan_openai is None, reason="core/_speedups.c is not built here")


def test_the_compiled_steps_are_built() -> None:
    # requirements.txt builds them (setup.py); a build that quietly failed would leave only the Python code tested.
    from core import _speedups

    assert speedups.scan_openai is _speedups.scan_openai and speedups.recv_stamped is _speedups.recv_stamped
    assert speedups.count_values is _speedups.count_values


def digest(events: list) -> tuple[list[str], bool, int | None, bool] | None:
    """What ``scan`` should say for these events (read up to the done marker), or None for an error among them."""
    texts, reasoning, tokens = [], False, None
    for event in events:
        if event.kind == "error":
            return None
        if event.kind == "done":
            return texts, reasoning, tokens, True
        if event.kind == "usage":
            tokens = event.output_tokens
        elif event.reasoning:
            reasoning = True
        else:
            texts.append(event.text)
    return texts, reasoning, tokens, False


def started_parser() -> OpenAIChatParser:
    parser = OpenAIChatParser()
    assert parser.feed(ROLE) == []  # the body's start, read by the parser: the next piece starts afresh
    return parser


@needs_build
@pytest.mark.parametrize("name", READ_BY_SCAN)
def test_whole_messages_are_read_as_the_parser_reads_them(name: str) -> None:
    piece = READ_BY_SCAN[name]
    scanned = started_parser().scan(piece)
    assert scanned is not None
    assert scanned == digest(started_parser().feed(piece))


@needs_build
@pytest.mark.parametrize("name", LEFT_TO_THE_PARSER)
def test_anything_else_is_left_to_the_parser(name: str) -> None:
    assert started_parser().scan(LEFT_TO_THE_PARSER[name]) is None


@needs_build
def test_the_body_start_and_a_message_in_two_pieces_are_left_to_the_parser() -> None:
    parser = OpenAIChatParser()
    assert parser.scan(ROLE) is None  # the body's start: a BOM may come first
    parser.feed(ROLE)
    assert parser.feed(b'data: {"choices": [{"delta": {"content": "a"}}]}') == []
    assert parser.scan(b"\n\n") is None  # the rest of a message held by the parser


ANSWER = ROLE + sse(
    *(chat_chunk({"content": f" word{i}"}) for i in range(12)),
    chat_chunk({}, finish="stop"),
    chat_chunk(None, usage={**USAGE, "completion_tokens": 12}),
    "[DONE]",
)


class Timer:
    """Stands in for the first-token timeout: when it was cancelled (the read it came in)."""

    def __init__(self, reads: list) -> None:
        self.reads, self.cancelled_at = reads, None

    def cancel(self) -> None:
        self.cancelled_at = len(self.reads) + 1


def filed(
    pieces: list[bytes], timer: Timer | None = None, until_first_token: bool = False
) -> tuple[StreamRecord, list[str], list[str | None]]:
    """An answer's pieces through AnswerReader's filing, one read per piece (the n-th read arriving at n ms)."""
    reader = AnswerReader(None, make_parser("openai"), StreamRecord("x", 0.0), 0.0, AnswerSettings())
    reader._until_first_token, reader._first_token_timer = until_first_token, timer
    endings: list[str | None] = []
    if timer is not None:
        timer.reads = endings
    for at, piece in enumerate(pieces, 1):
        endings.append(reader._take(piece, at / 1000))
        if endings[-1] is not None:
            break
    return reader.record, reader.text, endings


@needs_build
@pytest.mark.parametrize("cut", ["messages", "pairs", "whole", "split@300", "bytes"])
def test_an_answer_is_filed_the_same_with_and_without_the_compiled_step(cut: str, monkeypatch) -> None:
    if cut == "messages":
        pieces = [b"data: " + message for message in ANSWER.split(b"data: ")[1:]]
    elif cut == "pairs":
        messages = [b"data: " + message for message in ANSWER.split(b"data: ")[1:]]
        pieces = [b"".join(messages[i : i + 2]) for i in range(0, len(messages), 2)]
    else:
        pieces = dict(chunkings(ANSWER))[cut]
    compiled = filed(pieces)
    monkeypatch.setattr(OpenAIChatParser, "scans", False)
    python = filed(pieces)
    assert compiled == python
    record, text, endings = compiled
    assert len(record.chunk_times_ms) == 12 and record.usage_tokens == 12 and "".join(text).startswith(" word0")
    assert endings[-1] == SERVER_DONE


@needs_build
@pytest.mark.parametrize("first", ["content", "reasoning"])
def test_the_first_output_ends_the_first_token_timeout_and_reading_goes_on(first: str) -> None:
    timer = Timer([])
    tokens = sse(chat_chunk({first: "a"}), chat_chunk({"content": "b"}))
    record, text, endings = filed([ROLE, tokens, sse("[DONE]")], timer, until_first_token=True)
    assert endings == [None, None, SERVER_DONE] and timer.cancelled_at == 2  # the second read brought it
    assert record.ttfo_ms == 2.0 and record.chunk_times_ms == ([2.0, 2.0] if first == "content" else [2.0])
    assert text == (["a", "b"] if first == "content" else ["b"])


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_whole_messages_without_an_event_still_count_towards_the_bound(compiled: bool, monkeypatch) -> None:
    # A server that sends nothing but role-only chunks fails as "no event in 1 MB", read either way.
    if not compiled:
        monkeypatch.setattr(OpenAIChatParser, "scans", False)
    elif speedups.scan_openai is None:
        pytest.skip("core/_speedups.c is not built here")
    empty = sse(*[chat_chunk({"role": "assistant"})] * 200)
    with pytest.raises(StreamFailure, match="no event in 1 MB of stream"):
        filed([ROLE] + [empty] * (2 + (1 << 20) // len(empty)))


@needs_build
def test_a_scan_does_not_read_json_the_standard_library_refuses() -> None:
    # orjson is stricter than json.loads, never more lenient (core/fast_json.py): what it refuses, the parser judges.
    for payload in ('{"choices": [{"delta": {"content": NaN}}]}', '{"a": 1e999}'):
        piece = b"data: " + payload.encode() + b"\n\n"
        scanned = started_parser().scan(piece)
        assert scanned is None or scanned == digest(started_parser().feed(piece)), payload
        json.loads(payload)  # the standard library reads both


class _Waiter:
    """Stands in for the user's greenlet: what the event loop would wake it with."""

    def __init__(self) -> None:
        self.woken: list = []
        self.hub = SimpleNamespace(loop=SimpleNamespace(callbacks=[]))  # what the loop was asked to run
        self.hub.loop.run_callback = lambda *callback: self.hub.loop.callbacks.append(callback)

    def switch(self, ending: str) -> None:
        self.woken.append(ending)

    def throw(self, error: BaseException) -> None:
        self.woken.append(error)


def loop_read(
    pieces: list[bytes], compiled: bool, until_first_token: bool = True, max_mb: int = 16, poll_point: bool = False
) -> AnswerReader:
    """An answer's body pieces sent one by one over loopback and read by ``AnswerReader._readable`` as the event loop
    calls it (or by ``read_now``, as a poll point does), with the compiled reads or without, from the answer's start
    (``until_first_token``) or after its first token; the reader's waiter keeps what it was woken with."""
    with loopback_pair() as (client, peer):
        client.setblocking(False)
        response = HTTPResponse()
        response.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        response._sock, response.block_size = SimpleNamespace(_sock=client, closed=False), 65536
        limits = AnswerSettings(max_answer_mb=max_mb)
        reader = AnswerReader(response, make_parser("openai"), StreamRecord("x", 0.0), time.perf_counter(), limits)
        reader._until_first_token, reader._waiter = until_first_token, _Waiter()
        reader._watcher = SimpleNamespace(stopped=False)
        reader._watcher.stop = lambda: setattr(reader._watcher, "stopped", True)
        if compiled:
            reader._chunks = reads_in_c(client.fileno(), response, reader.parser, limits, MAX_BYTES_WITHOUT_EVENT, b"")
        for piece in [*(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in pieces), b"0\r\n\r\n"]:
            peer.sendall(piece)  # each under a read's 64 KB: one read takes it
            time.sleep(0.002)
            reader.read_now() if poll_point else reader._readable()
            if reader._waiter.woken or reader._waiter.hub.loop.callbacks:
                break  # reading stops: the end, or a failure
    return reader


@needs_build
@pytest.mark.parametrize("until_first_token", [True, False], ids=["from the start", "after the first token"])
def test_reads_filed_in_c_are_filed_as_python_files_them(until_first_token: bool, monkeypatch) -> None:
    messages = [ROLE, *(sse(chat_chunk({"content": f" w{i}"})) for i in range(6))]
    messages += [sse(chat_chunk({"reasoning": "hm"})), sse(chat_chunk(None, usage=USAGE)), sse("[DONE]")]
    python = loop_read(messages, False, until_first_token)
    taken: list[bytes] = []
    take = AnswerReader._take

    def counted(reader: AnswerReader, data: bytes, *rest) -> str | None:
        taken.append(data)
        return take(reader, data, *rest)

    monkeypatch.setattr(AnswerReader, "_take", counted)
    compiled = loop_read(messages, True, until_first_token)
    # Python files only the body's start, the first token (it ends the first-token timeout) and the done marker: C
    # files the rest.
    first_token = [sse(chat_chunk({"content": " w0"}))] if until_first_token else []
    assert taken == [ROLE, *first_token, sse("[DONE]")]
    for reader in (compiled, python):
        record = reader.record
        assert reader.text == [f" w{i}" for i in range(6)] and record.usage_tokens == 5
        assert record.ttfo_ms == record.chunk_times_ms[0] > 0 and record.chunk_times_ms == sorted(record.chunk_times_ms)
        assert len(set(record.chunk_times_ms)) == 6  # each token timed by its own read
    assert compiled.received == python.received == sum(len(m) for m in messages)
    assert compiled._waiter.woken == python._waiter.woken
    assert compiled._waiter.woken == [SERVER_DONE]


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=needs_build)], ids=["python", "compiled"])
def test_a_poll_point_that_ends_the_answer_stops_the_loop_reading_and_leaves_the_wake_to_it(compiled: bool) -> None:
    reader = loop_read([ROLE, sse(chat_chunk({"content": "a"})), sse("[DONE]")], compiled, poll_point=True)
    # A poll point may run in another user's greenlet: the loop wakes the user, and reads no more meanwhile.
    assert reader._waiter.woken == [] and reader._watcher.stopped
    assert reader._waiter.hub.loop.callbacks == [(reader._waiter.switch, SERVER_DONE)]
    assert reader.text == ["a"] and not reader._until_first_token


@needs_build
def test_reads_filed_in_c_keep_the_bounds() -> None:
    # Role-only chunks: no event, so the 1 MB bound fails the answer, as the Python reads fail it.
    empty = sse(*[chat_chunk({"role": "assistant"})] * 200)
    reader = loop_read([ROLE] + [empty] * (2 + (1 << 20) // len(empty)), True)
    assert [str(error) for error in reader._waiter.woken] == ["no event in 1 MB of stream"]
    # An answer past --max-answer-mb fails as over the cap.
    words = sse(*[chat_chunk({"content": "x" * 1000})] * 40)
    reader = loop_read([ROLE] + [words] * (2 + (1 << 20) // len(words)), True, until_first_token=False, max_mb=1)
    assert [str(error) for error in reader._waiter.woken] == [AnswerSettings(max_answer_mb=1).over_cap]
