"""demobot's capacity model and timings: slots, queueing, overload, injected errors, TTFT against its log."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from demobot.capacity import CapacityModel, Overloaded, SlotTicket
from demobot.launcher import DemobotProcess
from demobot.timing_log import read_timing_log
from tests.demobot.requests_to_bot import CONTENT_EVENT, MESSAGES, TIMEOUT_S, post


def run_concurrently(n: int, call: Callable[[], requests.Response]) -> list[tuple[float, requests.Response]]:
    """Run `call` on n threads released together; (seconds from release to answer, response) per thread."""
    barrier = threading.Barrier(n)
    results: list[tuple[float, requests.Response]] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        started = time.perf_counter()
        response = call()
        with lock:
            results.append((time.perf_counter() - started, response))

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    assert len(results) == n
    return sorted(results, key=lambda result: result[0])


def raw_streaming_request(url: str, body: dict) -> tuple[dict[str, str], float, list[float]]:
    """POST a streaming completion over a raw socket.

    Returns (response headers, seconds from send to headers, seconds from send to each content event).
    """
    parts = urlsplit(url)
    payload = json.dumps(body).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode()
    headers: dict[str, str] = {}
    headers_at = -1.0
    content_at: list[float] = []
    buffer = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT_S) as sock:
        sent_at = time.perf_counter()
        sock.sendall(head + payload)
        while chunk := sock.recv(65536):
            now = time.perf_counter() - sent_at
            buffer += chunk
            if not headers and b"\r\n\r\n" in buffer:
                headers_at = now
                raw_head, _, buffer = buffer.partition(b"\r\n\r\n")
                for line in raw_head.decode().split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if headers:
                matches = list(CONTENT_EVENT.finditer(buffer))
                content_at.extend([now] * len(matches))
                if matches:
                    buffer = buffer[matches[-1].end() :]
    return headers, headers_at, content_at


@pytest.mark.timing
def test_ttft_seen_by_client_matches_the_timing_log(tmp_path: Path) -> None:
    log_path = tmp_path / "timings.jsonl"
    flags = ("--ttft-ms", "200", "--token-ms", "20", "--answer-tokens", "10", "--timing-log", str(log_path))
    with DemobotProcess(*flags) as bot:
        body = {"messages": [{"role": "user", "content": "time me"}], "stream": True}
        headers, headers_at, content_at = raw_streaming_request(bot.url, body)
        # Second run: the first can pay one-off costs (imports, first connection).
        headers, headers_at, content_at = raw_streaming_request(bot.url, body)

    assert headers_at < 0.1, "headers must go out at admission, before the first token"
    assert len(content_at) == 10, "one SSE event per token"
    assert 0.160 <= content_at[0] <= 0.240, f"client TTFT {content_at[0] * 1000:.0f} ms, expected about 200"
    gaps = sorted(b - a for a, b in itertools.pairwise(content_at))
    assert 0.012 <= gaps[len(gaps) // 2] <= 0.030, f"median inter-token gap {gaps} s, expected about 0.020"

    (entry,) = [e for e in read_timing_log(log_path) if e["id"] == headers["x-request-id"]]
    assert entry["route"] == "completions" and entry["stream"] is True
    assert entry["status"] == 200 and entry["tokens"] == 10
    assert entry["first_token"] - entry["slot_acquired"] == pytest.approx(0.200, abs=0.040)
    assert entry["finished"] - entry["first_token"] == pytest.approx(9 * 0.020, abs=0.040)
    assert entry["received"] <= entry["slot_acquired"] <= entry["first_token"] <= entry["finished"]


@pytest.mark.timing
def test_queueing_second_request_waits_for_the_slot(tmp_path: Path) -> None:
    log_path = tmp_path / "timings.jsonl"
    flags = (
        "--slots",
        "1",
        "--ttft-ms",
        "300",
        "--token-ms",
        "0",
        "--answer-tokens",
        "1",
        "--timing-log",
        str(log_path),
    )
    with DemobotProcess(*flags) as bot:
        results = run_concurrently(2, lambda: post(bot, "/api/chat", {"message": "wait your turn"}))
        stats = bot.stats()
    (first_s, first), (second_s, second) = results
    assert first.status_code == second.status_code == 200
    assert 0.25 <= first_s <= 0.50, first_s
    assert 0.55 <= second_s <= 0.85, second_s
    assert 1.6 <= second_s / first_s <= 2.5
    assert stats["max_active"] == 1 and stats["max_queued"] == 1 and stats["served"] == 2

    log = {entry["id"]: entry for entry in read_timing_log(log_path)}
    late = log[second.headers["X-Request-Id"]]
    assert late["slot_acquired"] - late["received"] == pytest.approx(0.3, abs=0.08)


def test_overload_answers_429_with_retry_after() -> None:
    flags = ("--slots", "1", "--queue-limit", "0", "--ttft-ms", "300", "--retry-after", "3")
    with DemobotProcess(*flags) as bot:
        results = run_concurrently(4, lambda: post(bot, "/api/chat", {"message": "me first"}))
        stats = bot.stats()
    statuses = sorted(response.status_code for _, response in results)
    assert statuses.count(200) >= 1 and statuses.count(429) >= 1, statuses
    for _, response in results:
        if response.status_code == 429:
            assert response.headers["Retry-After"] == "3"
            assert response.json()["error"]["message"]
    assert stats["rejected"] == statuses.count(429)
    assert stats["served"] == statuses.count(200)


def test_error_rate_one_injects_500s() -> None:
    with DemobotProcess("--error-rate", "1", "--ttft-ms", "1000") as bot:
        started = time.perf_counter()
        chat = post(bot, "/api/chat", {"message": "fail please"})
        completion = post(bot, "/v1/chat/completions", {"messages": MESSAGES, "stream": True})
        elapsed = time.perf_counter() - started
        stats = bot.stats()
    expected = {"error": {"message": "injected error", "type": "server_error"}}
    assert chat.status_code == completion.status_code == 500
    assert chat.json() == expected and completion.json() == expected
    assert elapsed < 0.9, "injected errors answer at once, without generating"
    assert stats["errors_injected"] == 2 and stats["served"] == 0 and stats["max_active"] == 0


# ---------------------------------------------------------------- command line


def test_capacity_model_is_fifo_and_bounded() -> None:
    async def scenario() -> list[str]:
        model = CapacityModel(slots=1, queue_limit=2)
        order: list[str] = []
        holder = model.admit()
        first, second = model.admit(), model.admit()
        with pytest.raises(Overloaded):
            model.admit()
        assert (model.active, model.queued, model.rejected) == (1, 2, 1)

        waiting = asyncio.create_task(second.acquire())
        await asyncio.sleep(0)
        waiting.cancel()  # a client that gives up leaves the queue
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        assert model.queued == 1
        third = model.admit()

        async def use(name: str, ticket: SlotTicket) -> None:
            async with ticket:
                order.append(name)
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(use("third", third)), asyncio.create_task(use("first", first))]
        await asyncio.sleep(0)
        holder.release()
        await asyncio.gather(*tasks)
        assert (model.active, model.queued, model.served, model.max_queued) == (0, 0, 3, 2)
        return order

    assert asyncio.run(scenario()) == ["first", "third"]
