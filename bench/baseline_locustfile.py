"""The baselines for bench/stream_bench.py: the least a Locust user can do to read a streamed answer.

``LineReadingUser`` posts a streaming chat request and reads the body line by line until ``data: [DONE]``,
with no parsing and no metrics beyond Locust's own row (time to headers): the throughput baseline.

``BareTimingUser`` is the accuracy baseline, the bare reader: the same line-by-line read, plus the two
timings a load test cannot do without, TTFT (the first line carrying answer text, found by a byte search)
and E2E, each fired as a Locust request event. For the ladder it also writes, at the end of the test, one
line per answer (request id, start time, TTFT) and its event loop's lag, as the path in BARE_READER_LOG says.
"""

import json
import os
import time

import gevent
from locust import FastHttpUser, events, task

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
