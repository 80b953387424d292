"""How an AnswerReader reads a streamed answer, in a process patched the way Locust patches its own (the test process
is not: pytest-xdist's workers need real threads). Run by tests/users/llm/test_answer_reader.py against demobot's
OpenAI stream (its URL the one argument, demobot answering 4 tokens 300 ms apart, the first at 20 ms); prints one JSON
line."""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gevent  # noqa: E402

from plugins.setup import header_stamps  # noqa: E402
from users.common.http_answers import AnswerSettings  # noqa: E402
from users.llm.answer_reader import AnswerReader  # noqa: E402
from users.llm.first_tokens import read_first_tokens  # noqa: E402
from users.llm.http_stream import StreamingHttpClient  # noqa: E402
from users.llm.stream_metrics import StreamRecord  # noqa: E402
from users.llm.stream_parsers import make_parser  # noqa: E402

BODY = json.dumps(
    {
        "model": "demobot",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}],
    }
).encode()


def started(url: str) -> AnswerReader:
    """An answer whose headers are in, its reader ready."""
    client = StreamingHttpClient(url, 10)
    start = time.perf_counter()
    response = client.post("/v1/chat/completions", BODY, {"Content-Type": "application/json"})
    record = StreamRecord(name="probe", started_at=time.time())
    return AnswerReader(response, make_parser("openai"), record, start, AnswerSettings())


def outcome(reader: AnswerReader) -> dict[str, Any]:
    """How reading ended: its ending, or the error the user's greenlet raised, and when."""
    try:
        return {"ending": reader.read(), "at": time.perf_counter()}
    except Exception as error:
        return {"error": type(error).__name__, "at": time.perf_counter()}


def closed_while_read(url: str) -> dict[str, Any]:
    """The socket is closed (by another greenlet) while the loop waits for the next token."""
    reader = started(url)
    read = gevent.spawn(outcome, reader)
    while not reader.record.chunk_times_ms and not read.dead:
        gevent.sleep(0.005)
    gevent.sleep(0.05)  # the reader waits: the next token is 300 ms away
    closed = time.perf_counter()
    reader.response._sock.close()
    found = read.get(timeout=5)
    tokens = reader.record.chunk_times_ms
    after_close_s, compiled = found["at"] - closed, reader._chunks is not None
    return {"read": found, "after_close_s": after_close_s, "tokens": tokens, "compiled": compiled}


def busy_loop(url: str, poll_points: bool) -> dict[str, Any]:
    """Another greenlet keeps the loop busy for 450 ms, a loaded loop's long turn, while the first token comes (20 ms)
    and the second (320 ms); with poll points it reads the first tokens every 2 ms, as users do between their steps."""
    reader = started(url)

    def busy() -> None:
        end = time.perf_counter() + 0.45
        while (now := time.perf_counter()) < end:
            if poll_points:
                read_first_tokens()
            while time.perf_counter() < now + 0.002:
                pass

    gevent.spawn(busy)
    read = outcome(reader)
    return {"read": read, "tokens": reader.record.chunk_times_ms, "compiled": reader._chunks is not None}


def whole_answer(url: str) -> dict[str, Any]:
    reader = started(url)
    read = outcome(reader)
    tokens, usage = reader.record.chunk_times_ms, reader.record.usage_tokens
    return {"read": read, "tokens": tokens, "usage": usage, "compiled": reader._chunks is not None}


if __name__ == "__main__":
    url = sys.argv[1]
    header_stamps.register(None)  # as locustfile.py does: answers read in C where they can be (compiled_reads.py)
    found = {"whole": whole_answer(url), "closed": closed_while_read(url)}
    found |= {"busy": busy_loop(url, False), "busy, poll points": busy_loop(url, True)}
    print(json.dumps(found))
