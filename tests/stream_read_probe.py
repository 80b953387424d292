"""How an AnswerReader reads a streamed answer, in a process patched the way Locust patches its own (the test process
is not: pytest-xdist's workers need real threads). Run by tests/users/llm/test_answer_reader.py against demobot's
OpenAI stream (its URL the one argument, demobot answering 4 tokens 300 ms apart); prints one JSON line."""

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


def outcome(reader: AnswerReader, until_first_token: bool) -> dict[str, Any]:
    """How reading ended: its ending, or the error the user's greenlet raised, and when."""
    try:
        ending = reader.read(until_first_token)
        return {"ending": ending, "at": time.perf_counter()}
    except Exception as error:
        return {"error": type(error).__name__, "at": time.perf_counter()}


def closed_while_read(url: str) -> dict[str, Any]:
    """The socket is closed (by another greenlet) while the loop waits for the next token."""
    reader = started(url)
    first = outcome(reader, True)
    rest = gevent.spawn(outcome, reader, False)
    gevent.sleep(0.05)  # the reader waits: the next token is 300 ms away
    closed = time.perf_counter()
    reader.response._sock.close()
    found = rest.get(timeout=5)
    tokens = reader.record.chunk_times_ms
    after_close_s, compiled = found["at"] - closed, reader._chunks is not None
    return {"first": first, "rest": found, "after_close_s": after_close_s, "tokens": tokens, "compiled": compiled}


def whole_answer(url: str) -> dict[str, Any]:
    reader = started(url)
    first, rest = outcome(reader, True), outcome(reader, False)
    tokens, usage = reader.record.chunk_times_ms, reader.record.usage_tokens
    return {"first": first, "rest": rest, "tokens": tokens, "usage": usage, "compiled": reader._chunks is not None}


if __name__ == "__main__":
    url = sys.argv[1]
    header_stamps.register(None)  # as locustfile.py does: answers read in C where they can be (compiled_reads.py)
    print(json.dumps({"whole": whole_answer(url), "closed": closed_while_read(url)}))
