"""The probe before the load (plugins/setup/probe.py): one real exchange per user kind, counted nowhere.

A misconfigured run (wrong path, refused key, wrong answer field) stops before the load in one line and exit 2,
within 5 s of the command; a good one starts as before, and the probe's exchange reaches the target (demobot's
own counter) but neither the stats nor requests.csv. Load-dependent failures (here every answer a 500) only warn.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator

import pytest

from demobot.launcher import DemobotProcess
from tests.conftest import clean_env, failure_counts, one_error_line
from users.llm.stream_probe import sniffed_format, wrong_format

FAST = ("-u", "1", "-t", "2s", "--think-time", "0.2")

MISCONFIGURED = {
    "wrong path": (
        ("--chat-path", "/v2/ask"),
        "RestChatUser: POST /v2/ask: HTTP 404 Not Found (the path is not there)",
    ),
    "wrong key": (
        ("--user-mix", "StreamingChatUser", "--api-key", "sk-wrong-key-123"),
        "StreamingChatUser: POST /v1/chat/completions: HTTP 401 Unauthorized (the key or sign-in was refused)",
    ),
    "wrong WebSocket path": (
        ("--user-mix", "WebSocketChatUser", "--ws-path", "/ws/nope"),
        "WebSocketChatUser: WebSocket /ws/nope: handshake HTTP 404 Not Found (the path is not there)",
    ),
    "wrong voice path": (
        ("--user-mix", "AudioStreamUser", "--audio-path", "/ws/nope"),
        "AudioStreamUser: WebSocket /ws/nope: handshake HTTP 404 Not Found (the path is not there)",
    ),
    "wrong group-chat path": (
        ("--user-mix", "PlenaryUser", "--plenary-path", "/ws/nope"),
        "PlenaryUser: WebSocket /ws/nope: handshake HTTP 404 Not Found (the path is not there)",
    ),
    "wrong answer field": (
        ("--answer-field", "result.text"),
        "RestChatUser: --answer-field 'result.text': no such field in the answer; it has: answer, session_id,",
    ),
}


@pytest.fixture(scope="module")
def bot() -> Iterator[DemobotProcess]:
    """One demobot for the module's runs (the count test reads its counter's change)."""
    with DemobotProcess("--ttft-ms", "5", "--token-ms", "0") as process:
        yield process


@pytest.mark.parametrize("case", MISCONFIGURED)
def test_a_misconfigured_run_stops_before_the_load(bot, demobot, run_locust, case: str) -> None:
    args, expected = MISCONFIGURED[case]
    bot = demobot("--auth", "required") if case == "wrong key" else bot
    started = time.monotonic()
    run = run_locust("--host", bot.url, *FAST, "-t", "30s", *args, env=clean_env(CHATBOT_API_KEY="x"))
    took_s = time.monotonic() - started
    assert run.returncode == 2, run.output
    assert expected in one_error_line(run.output)
    assert "--skip-probe" in run.output and "sk-wrong-key-123" not in run.output
    assert took_s < 5, took_s  # -t 30s: the load never started
    assert not any(run.report_dir.iterdir()), list(run.report_dir.iterdir())  # --report-dir given: left empty


def test_skip_probe_lets_the_misconfigured_run_go(bot, run_locust) -> None:
    run = run_locust("--host", bot.url, *FAST, "--chat-path", "/v2/ask", "--skip-probe")
    assert run.returncode == 1, run.output
    assert set(failure_counts(run)) == {"HTTP 404 Not Found"}


def test_the_probe_exchange_reaches_the_target_but_not_the_stats(bot, run_locust) -> None:
    asked_before = bot.stats()["requests"]
    run = run_locust("--host", bot.url, *FAST)
    assert run.returncode == 0, run.output
    counted, cut_short = run.summary["totals"]["count"], run.summary["totals"]["cut_short"]
    with (run.report_dir / "requests.csv").open() as file:
        logged = sum(1 for row in csv.DictReader(file) if row["status"] != "cut short")
    assert counted >= 3 and logged == counted
    asked = bot.stats()["requests"] - asked_before  # demobot's own count: the probe's question was asked too
    assert counted + 1 <= asked <= counted + 1 + cut_short, (asked, counted, cut_short)


def test_load_dependent_failures_only_warn(demobot, run_locust) -> None:
    bot = demobot("--error-rate", "1", "--ttft-ms", "5", "--token-ms", "0")
    run = run_locust("--host", bot.url, *FAST)
    assert run.returncode == 1, run.output
    assert "probe: RestChatUser's first exchange failed (HTTP 500 Internal Server Error); starting anyway" in run.output


OPENAI = b'data: {"id":"c1","choices":[{"delta":{"content":"hi"}}]}\n\n'
OLLAMA = b'{"message":{"content":"hi"},"done":false}\n{"message":{"content":"!"},"done":true}\n'


def test_the_stream_format_that_fits_is_told() -> None:
    assert sniffed_format(OPENAI) == "openai"
    assert sniffed_format(b'event: message\ndata: {"text": "hi"}\n\n') == "sse"
    assert sniffed_format(OLLAMA) == "ndjson"
    assert sniffed_format(b'event: message_start\ndata: {"type": "message_start", "message": {}}\n\n') == "anthropic"
    assert sniffed_format(b'event: response.created\ndata: {"type": "response.created"}\n\n') == "openai-responses"
    assert sniffed_format(b'{"answer": "hi", "id": 3}') == "json"
    assert sniffed_format(b"Hello there") == "text"
    assert sniffed_format(b"  \n") is None
    assert sniffed_format(b"data: " + b"x" * 4000) is None  # an endless line tells nothing
    assert sniffed_format(b'{"message": {"content": "' + b"x" * 4000) is None
    told = wrong_format("answer is not JSON", OPENAI, "ndjson", "")
    assert told and told.endswith("try --stream-format openai") and "begins with 'data: " in told
    told = wrong_format("no content in the answer", OLLAMA, "openai", "")
    assert told and told.endswith("try --stream-format ndjson")
    told = wrong_format("no content in the answer", b'{"answer": "hi"}', "openai", "")
    assert told and "one JSON object, not a stream" in told
    told = wrong_format("no content in the answer", b'data: {"text": "hi"}\n\n', "sse", "delta")
    assert told and told.startswith("--stream-text-path 'delta' found no text")
    assert wrong_format("HTTP 503 Service Unavailable", b"", "openai", "") is None  # load, not format
    error_event = b'data: {"error": {"message": "overloaded"}}\n\n'
    assert wrong_format("error in stream: overloaded", error_event, "openai", "") is None  # the server's own words
    assert wrong_format("no content in the answer", OPENAI, "openai", "") is None  # the format fits
