"""WebSocketChatUser: frame reading and failure classes as plain logic, then real headless Locust runs
against demobot's /ws/chat (whole and streamed replies, queued prompts, tokens, every failure class)."""

from __future__ import annotations

import json
import struct
from collections import Counter
from pathlib import Path
from statistics import median

import pytest
import websocket

from tests.conftest import failure_counts, two_workers
from tests.users.llm.busy_generator import held_run
from users.llm.stream_metrics import StreamRecord
from users.ws.replies import UNREADABLE, Frame, PendingReply, ReplyBook, WsFields, read_frame
from users.ws.ws_connection import websocket_url
from users.ws.ws_failures import CLIENT, SERVER, UNEXPECTED, close_failure, close_frame_failure, error_failure
from users.ws.ws_metrics import ConnectionTimeline

WS = ("--user-mix", "WebSocketChatUser", "--spawn-rate", "50")


# --- plain logic ---------------------------------------------------------------------------------


def test_frames_are_read_by_their_fields() -> None:
    fields = WsFields()
    assert read_frame(b'{"id": "7", "answer": "Hi there"}', fields) == Frame("reply", "7", "Hi there", True)
    assert read_frame(b'{"id": 7, "delta": " more"}', fields) == Frame("delta", "7", " more", False)
    assert read_frame(b'{"id": "7", "done": true}', fields) == Frame("done", "7", "", True)
    assert read_frame(b'{"id": "7", "error": {"message": "overloaded"}}', fields) == Frame(
        "error", "7", "overloaded", True
    )
    assert read_frame(b'{"type": "ping"}', fields).kind == "ignored"
    # JSON is expected: anything else fails the prompt, unless --ws-plain-replies takes UTF-8 text as the answer
    assert read_frame(b"plain text answer", fields) == Frame(UNREADABLE, None, "reply is not JSON", True)
    assert read_frame(b"\xff\xfe\x00garbage", fields) == Frame(UNREADABLE, None, "reply is not JSON", True)
    assert read_frame(b'["a"]', fields) == Frame(UNREADABLE, None, "reply is not a JSON object", True)
    plain = WsFields(plain=True)
    assert read_frame(b"plain text answer", plain) == Frame("reply", None, "plain text answer", True)
    assert read_frame(b"\xff\xfe\x00garbage", plain) == Frame(UNREADABLE, None, "reply is not UTF-8 text", True)
    nested = WsFields(reply="data.text", request_id="")
    assert read_frame(b'{"id": "1", "data": {"text": "deep"}}', nested) == Frame("reply", None, "deep", True)


def test_replies_match_by_id_else_the_oldest_prompt() -> None:
    book = ReplyBook()
    first, second = (PendingReply(i, "ws:x", 0.0, StreamRecord("ws:x", 0.0)) for i in ("a", "b"))
    book.add(first)
    book.add(second)
    assert book.match(Frame("reply", "b")) is second
    assert book.match(Frame("reply", None)) is first
    assert book.match(Frame("reply", "server-own-id")) is first  # ids the server made up: next reply
    book.take("a")
    assert book.match(Frame("reply", "a")) is None  # a late reply to a prompt that timed out
    assert book.take_all() == [second] and len(book) == 0


@pytest.mark.parametrize(
    ("code", "kind"),
    [(4003, CLIENT), (1002, CLIENT), (1008, CLIENT), (1011, SERVER), (1013, SERVER), (1006, UNEXPECTED)],
)
def test_close_codes_have_their_failure_class(code: int, kind: str) -> None:
    assert close_failure(code).kind == kind
    assert close_frame_failure(struct.pack("!H", code) + b"why").kind == kind


def test_errors_have_their_failure_class() -> None:
    assert error_failure(websocket.WebSocketBadStatusException("x", 403)).kind == CLIENT
    assert str(error_failure(websocket.WebSocketBadStatusException("x", 401))) == "handshake HTTP 401 Unauthorized"
    assert error_failure(websocket.WebSocketBadStatusException("x", 502)).kind == SERVER
    assert error_failure(websocket.WebSocketProtocolException("bad opcode")).kind == CLIENT
    assert error_failure(websocket.WebSocketTimeoutException("slow")).kind == UNEXPECTED
    assert str(error_failure(ConnectionRefusedError())) == "connection refused"
    assert close_failure(None).kind == UNEXPECTED and str(close_failure(1000)).startswith("closed by the server")


def test_websocket_urls_follow_the_host() -> None:
    assert websocket_url("http://127.0.0.1:8080", "/ws/chat") == "ws://127.0.0.1:8080/ws/chat"
    assert websocket_url("https://bot.example.com/base/", "ws/chat", {"token": "t"}) == (
        "wss://bot.example.com/base/ws/chat?token=t"
    )
    assert websocket_url("http://h", "/ws?v=2", {"user": "u"}) == "ws://h/ws?v=2&user=u"
    assert websocket_url("http://h", "wss://other/ws") == "wss://other/ws"


def test_connection_levels_pool_seconds_across_processes() -> None:
    timeline = ConnectionTimeline()
    for second in range(10):
        timeline.sample("a", second, 5 if second < 5 else 10)
        timeline.add(second, "WSR", 100.0 if second < 5 else 300.0, None)
    worker = ConnectionTimeline()
    worker.sample("local", 5, 10)  # the other process has its 10 connections from second 5 on
    worker.add(7, "WSR", None, "unexpected")
    worker.add(8, "WS", 5.0, "client")
    timeline.merge_message(worker.to_message(), process="b")
    rows = {row["connections"]: row for row in timeline.by_connections()}
    assert set(rows) == {5, 20}
    assert rows[5]["reply_mean_ms"] == 100 and rows[5]["error_rate"] == 0
    assert rows[20]["reply_max_ms"] == 300 and rows[20]["events"] == 7
    assert rows[20]["unexpected_error_rate"] == pytest.approx(1 / 7, abs=1e-5)
    assert rows[20]["client_error_rate"] == pytest.approx(1 / 7, abs=1e-5)
    totals = timeline.totals()
    assert totals["connections_max"] == 20 and totals["errors"] == {"client": 1, "server": 0, "unexpected": 1}


# --- real runs against demobot -------------------------------------------------------------------


@pytest.mark.timing
def test_whole_replies_are_timed_per_prompt(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "80", "--token-ms", "5", "--answer-tokens", "5")
    run = run_locust("--host", bot.url, *WS, "-u", "3", "-t", "4s", "--think-time", "0.1")
    assert run.returncode == 0, run.output
    rows = run.rows()
    assert {key.split()[0] for key in rows} == {"WS", "WSR"}, rows  # no TTFT rows for whole replies
    assert rows["WS connect"]["count"] == 3
    replies = [row for key, row in rows.items() if key.startswith("WSR ws:")]
    assert sum(row["count"] for row in replies) > 20
    # A whole reply is due after the first token plus four more tokens: 80 + 4 x 5 ms.
    assert all(100 <= row["p50_ms"] <= 110 for row in replies), replies
    section = run.summary["websocket"]
    assert section["failures"] == 0 and section["error_rate"] == 0 and section["connections_max"] == 3
    assert section["by_connections"][-1]["connections"] == 3
    assert (run.report_dir / section["plot"]).stat().st_size > 10_000
    assert "llm" not in run.summary


@pytest.mark.timing
def test_streamed_replies_give_ttft_and_llm_metrics(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "60", "--token-ms", "10", "--answer-tokens", "6")
    run = run_locust(
        "--host", bot.url, *WS, "-u", "2", "-t", "4s", "--think-time", "0.1", "--ws-extra", '{"stream": true}'
    )
    assert run.returncode == 0, run.output
    llm = run.summary["llm"]
    assert 59 < llm["ttft_ms"]["p50"] < 66 and 9 < llm["itl_ms"]["p50"] < 12
    assert 109 < llm["e2e_ms"]["p50"] < 118 and llm["output_tokens"] == 6 * llm["requests"]
    assert {key.split()[0] for key in run.rows()} == {"WS", "WSR", "TTFT"}
    with (run.report_dir / "requests.csv").open() as file:
        rows = [line.split(",") for line in file.read().splitlines()[1:]]
    assert any(row[3] == "WSR" and row[1] and float(row[7]) > 59 for row in rows)  # request id and TTFT


@pytest.mark.timing
@pytest.mark.alone  # beside another test, demobot itself would be held by the busy greenlet's core
def test_a_busy_generator_does_not_delay_the_replies_it_reads(demobot, run_locust, tmp_path: Path) -> None:
    # Locust's loop is held 12 ms out of every 20 (tests/users/llm/busy_generator.py); a reply's tokens are timed at
    # their arrival all the same. The truth is demobot's log of the same replies (its first and last token written).
    run, truth = held_run(demobot, run_locust, tmp_path / "timings.jsonl", *WS, "--ws-extra", '{"stream": true}')
    true_ttft = median((t["first_token"] - t["received"]) * 1000 for t in truth if t["first_token"])
    true_e2e = median((t["finished"] - t["received"]) * 1000 for t in truth if t["finished"])
    llm = run.summary["llm"]
    assert llm["requests"] >= 40, llm
    # Clock at the read: about 4 ms high at p50. The prompt's trip both ways takes well under a millisecond.
    assert -0.5 < llm["ttft_ms"]["p50"] - true_ttft < 1.0, (llm["ttft_ms"], true_ttft)
    assert -0.5 < llm["e2e_ms"]["p50"] - true_e2e < 1.0, (llm["e2e_ms"], true_e2e)


def test_queue_size_keeps_several_prompts_in_flight(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "300", "--answer-tokens", "1")
    run = run_locust("--host", bot.url, *WS, "-u", "1", "-t", "3s", "--think-time", "0", "--queue-size", "4")
    assert run.returncode == 0, run.output
    assert bot.stats()["max_active"] == 4
    replies = sum(row["count"] for row in run.rows("WSR").values())
    assert 24 <= replies <= 40  # four answers every 300 ms over about 3 s


def test_tokens_reach_the_handshake_as_header_or_query(demobot, run_locust, tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("email,password\nada@example.com,secret-1\n")
    bot = demobot("--auth", "required", "--account", "ada@example.com:secret-1", "--ttft-ms", "10")
    common = ("--host", bot.url, *WS, "-u", "2", "-t", "3s", "--think-time", "0.2")
    header = run_locust(*common, "--auth", "login", "--accounts", str(accounts))
    query = run_locust(*common, "--auth", "login", "--accounts", str(accounts), "--ws-token-param", "token")
    refused = run_locust(*common, "--skip-probe")  # else the probe stops the start: here the refusals are counted
    for run in (header, query):
        assert run.returncode == 0, run.output
        assert run.row("WS connect")["failures"] == 0 and run.row("POST login")["count"] >= 1
    assert refused.returncode == 1
    assert failure_counts(refused)["handshake HTTP 401 Unauthorized"] >= 2
    assert refused.summary["websocket"]["client_error_rate"] == 1.0


def test_each_failure_has_its_class_and_rate(demobot, run_locust, tmp_path: Path) -> None:
    hooks = {
        "ok": "Hello there",
        "close4003": "/close 4003",
        "protocol": "/protocol-error",
        "close1011": "/close 1011",
        "error": "/error",
        "silence": "/silence",
        "drop": "/drop",
    }
    prompts = tmp_path / "hooks.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": text, "category": name}) + "\n" for name, text in hooks.items()))
    bot = demobot("--ttft-ms", "10", "--answer-tokens", "2")
    run = run_locust(
        "--host", bot.url, *WS, "-u", "4", "-t", "5s", "--think-time", "0.05", "--prompts", str(prompts),
        "--reply-timeout", "0.5",
    )  # fmt: skip
    assert run.returncode == 1, run.output
    assert "Traceback" not in run.output
    failures = failure_counts(run)
    expected_class = {
        "closed 4003 closed on request": CLIENT,
        "protocol error": CLIENT,
        "closed 1011 closed on request": SERVER,
        "error reply: injected error": SERVER,
        "reply timeout": UNEXPECTED,
        "connection dropped": UNEXPECTED,
    }
    assert set(expected_class) <= set(failures), failures
    section = run.summary["websocket"]
    by_class = Counter()
    for name, count in failures.items():
        by_class[expected_class.get(name, UNEXPECTED)] += count
    assert section["errors"] == {kind: by_class[kind] for kind in (CLIENT, SERVER, UNEXPECTED)}, failures
    for kind in (CLIENT, SERVER, UNEXPECTED):
        assert section[f"{kind}_error_rate"] == pytest.approx(by_class[kind] / section["events"], abs=1e-5)
    assert run.row("WSR ws:ok")["failures"] == 0 or failures.get("connection dropped")
    # Every lost connection was opened again: the users kept asking.
    assert run.row("WS connect")["count"] > 4


def test_websocket_figures_merge_across_worker_processes(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "20", "--answer-tokens", "2")
    run = run_locust("--host", bot.url, *WS, "-u", "6", "-t", "6s", "--think-time", "0.1", *two_workers())
    assert run.returncode == 0, run.output
    section = run.summary["websocket"]
    replies = sum(row["count"] for row in run.rows("WSR").values())
    assert section["events"] == replies + run.row("WS connect")["count"]
    assert section["connections_max"] == 6
    assert max(row["connections"] for row in section["by_connections"]) == 6
