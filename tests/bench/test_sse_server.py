"""bench/sse_server.py, the benchmarks' cheap streaming server: it must stream what demobot streams and log the
same timings, or the ladder would judge clients against another wire format or another truth."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from bench.bench_servers import FastServerProcess
from demobot.launcher import DemobotProcess
from demobot.timing_log import GenerationTiming

FLAGS = ("--ttft-ms", "20", "--token-ms", "1", "--answer-tokens", "5")
BODY = json.dumps(
    {
        "model": "demobot",
        "messages": [{"role": "user", "content": "How do I reset my password?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
).encode()
REQUEST = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


def exchange(sock: socket.socket, request: bytes = REQUEST) -> tuple[dict[str, str], list[dict]]:
    """Send one request on a keep-alive socket; the response headers and the stream's events (JSON, or DONE)."""
    sock.sendall(request)
    data = b""
    while not data.endswith(b"\r\n0\r\n\r\n"):
        more = sock.recv(65536)
        assert more, data
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    text, rest = b"", body
    while (size := int(rest[: rest.index(b"\r\n")], 16)) > 0:  # undo the chunked framing
        start = rest.index(b"\r\n") + 2
        text, rest = text + rest[start : start + size], rest[start + size + 2 :]
    events = [event.removeprefix("data: ") for event in text.decode().split("\n\n") if event]
    return headers, [{"done": True} if event == "[DONE]" else json.loads(event) for event in events]


def shape(value: object) -> object:
    """The JSON's structure with its strings left out (ids and answer words differ; numbers and keys must not)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items() if key not in ("id", "created")}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return "text" if isinstance(value, str) else value


def test_it_streams_what_demobot_streams_and_logs_true_timings(
    demobot: Callable[..., DemobotProcess], tmp_path: Path
) -> None:
    log = tmp_path / "timings.jsonl"
    with FastServerProcess(*FLAGS, "--timing-log", str(log)) as fast:
        url = urlsplit(fast.url)
        with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
            answers = [exchange(sock), exchange(sock)]  # one keep-alive connection, two answers
        with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
            big = b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 70000\r\n\r\n"
            sock.sendall(big)
            assert sock.recv(4096).startswith(b"HTTP/1.1 413 ") and sock.recv(4096) == b""  # refused, then closed
    bot = demobot(*FLAGS)
    with socket.create_connection((urlsplit(bot.url).hostname, urlsplit(bot.url).port), timeout=5) as sock:
        theirs = exchange(sock)
    for headers, events in answers:
        assert [shape(event) for event in events] == [shape(event) for event in theirs[1]]
        assert {k: v for k, v in headers.items() if k != "X-Request-Id"} == {
            k: v for k, v in theirs[0].items() if k not in ("X-Request-Id", "Date", "Server")
        }
    timings = [json.loads(line) for line in log.read_text().splitlines()]
    assert [t["id"] for t in timings] == [headers["X-Request-Id"] for headers, _ in answers]
    for t in timings:
        assert list(t) == [field.name for field in dataclasses.fields(GenerationTiming)]
        assert t["status"] == 200 and t["tokens"] == 5, t
        assert t["received"] <= t["slot_acquired"] <= t["first_token"] <= t["finished"], t
        assert t["first_token"] - t["received"] >= 0.020, t  # never before its TTFT
