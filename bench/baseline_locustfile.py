"""The baselines for bench/stream_bench.py: the least a Locust user can do to read a streamed answer.

``LineReadingUser`` posts a streaming chat request and reads the body line by line until ``data: [DONE]``,
with no parsing and no metrics beyond Locust's own row (time to headers): the throughput baseline.

``RawSocketUser`` is the floor of any gevent reader: a plain socket, the request written as ready-made bytes,
each read taken whole (waiting for the socket as users/common/http_body.py does), TTFT found by a byte search, no
HTTP parser, no events; it writes the same log as BareTimingUser. What it costs per token is the event loop's
wake-up and the system calls, the part no Python code on top can save.

``BareTimingUser`` is the accuracy baseline, the bare reader: the same line-by-line read, plus the two
timings a load test cannot do without, TTFT (the first line carrying answer text, found by a byte search)
and E2E, each fired as a Locust request event. For the ladder it also writes, at the end of the test, one
line per answer (request id, start time, TTFT) and its event loop's lag, as the path in BARE_READER_LOG says.
"""

import json
import os
import socket
import time
from urllib.parse import urlsplit

import gevent
from gevent.socket import create_connection
from locust import FastHttpUser, User, events, task

BODY = json.dumps(
    {
        "model": "demobot",
        "messages": [{"role": "user", "content": "How do I reset my password?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
)
HEADERS = {"Content-Type": "application/json"}
CONTENT = b'"content":"'
"""demobot's chunks are compact JSON: answer text follows this, and an empty one (the role chunk) is ``""``."""

ANSWERS: list[tuple[str, float, float]] = []
LOOP_LAG_MS: list[float] = []


class LineReadingUser(FastHttpUser):
    """Reads each streamed answer to the end with geventhttpclient's readline."""

    @task
    def ask(self) -> None:
        with self.client.post("/v1/chat/completions", data=BODY, headers=HEADERS, stream=True) as response:
            raw = response._response
            while True:
                line = raw.readline(b"\n")
                if not line or line.startswith(b"data: [DONE]"):
                    break


class BareTimingUser(FastHttpUser):
    """Reads line by line and times only TTFT and E2E (the bare reader of issue 20)."""

    @task
    def ask(self) -> None:
        fire, ttft_ms = self.environment.events.request.fire, None
        started_at, start = time.time(), time.perf_counter()
        with self.client.post("/v1/chat/completions", data=BODY, headers=HEADERS, stream=True) as response:
            raw = response._response
            while True:
                line = raw.readline(b"\n")
                if not line or line.startswith(b"data: [DONE]"):
                    break
                if ttft_ms is None and (at := line.find(CONTENT)) >= 0 and line[at + len(CONTENT)] != 34:
                    ttft_ms = (time.perf_counter() - start) * 1000
            e2e_ms = (time.perf_counter() - start) * 1000
            request_id = raw.get("x-request-id") or ""
        if ttft_ms is not None:
            fire(request_type="TTFT", name="chat", response_time=ttft_ms, response_length=0, exception=None)
            ANSWERS.append((request_id, started_at, ttft_ms))
        fire(request_type="E2E", name="chat", response_time=e2e_ms, response_length=0, exception=None)


class RawSocketUser(User):
    """Reads each answer from a plain keep-alive socket: the least work per token a gevent reader can do."""

    sock = None

    @task
    def ask(self) -> None:
        if self.sock is None:
            url = urlsplit(self.host)
            self.sock = create_connection((url.hostname, url.port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.request = (
                f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(BODY)}\r\n\r\n{BODY}"
            ).encode()
        sock, ttft_ms, request_id, tail = self.sock, None, "", b""
        started_at, start = time.time(), time.perf_counter()
        sock.sendall(self.request)
        while not tail.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of a chunked body
            sock._wait(sock._read_event)
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("demobot closed the connection")
            if ttft_ms is None:
                at = data.find(CONTENT)
                while at >= 0 and data[at + len(CONTENT)] == 34:  # an empty content: the role chunk
                    at = data.find(CONTENT, at + 1)
                if at >= 0:
                    ttft_ms = (time.perf_counter() - start) * 1000
            if not request_id and (at := data.find(b"X-Request-Id: ")) >= 0:
                request_id = data[at + 14 : data.find(b"\r\n", at)].decode()
            tail = (tail + data)[-7:]
        if ttft_ms is not None:
            ANSWERS.append((request_id, started_at, ttft_ms))


def _probe_loop_lag() -> None:
    """As plugins/metrics/loop_lag.py: ask to sleep 5 ms, record how much later the loop woke."""
    while True:
        asked = time.perf_counter()
        gevent.sleep(0.005)
        LOOP_LAG_MS.append(max(0.0, (time.perf_counter() - asked - 0.005) * 1000))


@events.test_start.add_listener
def _start_probe(**_kwargs: object) -> None:
    if os.environ.get("BARE_READER_LOG"):
        gevent.spawn(_probe_loop_lag)


@events.test_stop.add_listener
def _write_log(**_kwargs: object) -> None:
    if path := os.environ.get("BARE_READER_LOG"):
        with open(path, "w") as file:
            json.dump({"answers": ANSWERS, "loop_lag_ms": LOOP_LAG_MS}, file)
