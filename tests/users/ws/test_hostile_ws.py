"""Hostile WebSocket servers (tests/hostile_ws.py) against every WebSocket user: each misbehaviour ends as one
clear failure name, the run ends on time, the process stays small, and a RestChatUser beside them on demobot
keeps its latency. The ping meter and the size bounds are checked as plain logic first."""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from core.errors import InputError
from tests.conftest import LocustRun, failure_counts
from tests.hostile_ws import HostileWebSocketServer
from users.ws.ws_frames import FrameReader, MessageTooLong
from users.ws.ws_limits import PingMeter, WsLimitSettings

RUN_S = 3
"""Every run here is ``-t 3s``; it must end within this plus ON_TIME_S of its start (summary.json's ``started``,
whole seconds, so up to a second early: Python's and Locust's own start-up are left out, a busy machine's)."""
ON_TIME_S = 5

DEMOBOT_ANSWER_MS = 52
"""What a RestChatUser's answer takes from the demobot below (--ttft-ms 50, two tokens of 1 ms): its clean p50."""

CONTROL = ("--ttft-ms", "50", "--token-ms", "1", "--answer-tokens", "2")


# --- plain logic ---------------------------------------------------------------------------------


def test_the_ping_meter_counts_per_second() -> None:
    meter = PingMeter(3)
    assert not any(meter.flooded(0.1 * n) for n in range(3))  # three pings in a second: fine
    assert meter.flooded(0.5)  # the fourth within the same second: a flood
    assert not meter.flooded(1.2)  # a new second starts a new count


def test_limits_are_bounded_and_name_the_cap() -> None:
    assert WsLimitSettings().over_cap == "answer over 16 MB"
    assert WsLimitSettings(ws_max_message_mb=0.5).max_message_bytes == 512 * 1024
    for bad in ({"ws_max_message_mb": 0.0}, {"ws_max_message_mb": 5000.0}, {"ws_max_pings": 0}):
        with pytest.raises(InputError, match="--ws-max"):
            WsLimitSettings(**bad).check()


def test_the_audio_frame_reader_refuses_a_long_message_from_its_header() -> None:
    with pytest.raises(MessageTooLong):
        FrameReader(1000).feed(b"\x82\x7f" + (600 * 1024 * 1024).to_bytes(8, "big"))  # no payload needed
    reader = FrameReader(1000)
    reader.feed(b"\x02\x7e" + (600).to_bytes(2, "big") + b"x" * 600)  # a first fragment of 600 bytes
    with pytest.raises(MessageTooLong):
        reader.feed(b"\x80\x7e" + (600).to_bytes(2, "big"))  # its continuation makes 1200


def test_the_audio_frame_reader_parses_a_flood_over_several_turns() -> None:
    reader = FrameReader(1000)
    assert len(reader.feed(b"\x89\x00" * 100, max_frames=64)) == 64 and reader.backlog  # the caller yields here
    assert len(reader.feed(b"", max_frames=64)) == 36 and not reader.backlog


# --- real runs -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileWebSocketServer]:
    server = HostileWebSocketServer()
    yield server
    server.close()


def timed_run(run_locust, *args: str) -> tuple[LocustRun, float]:
    """A ``-t 3s`` run and the seconds from its start to its exit; a run that does not end is cut off at 40 s."""
    run = run_locust("-t", f"{RUN_S}s", "--think-time", "0.2", "--monitor-interval", "0.5", *args, timeout=40)
    return run, time.time() - datetime.fromisoformat(run.summary["started"]).timestamp()


def aimed_at(server: HostileWebSocketServer, case: str) -> tuple[str, ...]:
    """Every WebSocket user aimed at the server's ``case`` (--host stays free for well-behaved users)."""
    url = f"{server.ws_url}/{case}"
    return ("--ws-path", url, "--audio-path", url)


def check_ended_well(run: LocustRun, wall_s: float) -> None:
    assert wall_s < RUN_S + ON_TIME_S, wall_s
    assert "Traceback" not in run.output, run.output
    peak_mb = run.summary["resources"]["processes"]["load generator"]["memory_mb"]["peak"]
    assert peak_mb < 300, peak_mb


def control_p50_ms(run: LocustRun) -> tuple[float, int]:
    """The median and count of the RestChatUser's answers, from requests.csv."""
    with (run.report_dir / "requests.csv").open() as file:
        rows = [row for row in csv.DictReader(file) if row["type"] == "POST" and row["status"] == "ok"]
    times = [float(row["response_time_ms"]) for row in rows]
    return statistics.median(times), len(times)


def check_control(run: LocustRun) -> None:
    """The RestChatUser kept its clean latency: the loop was not starved (the issue: 2 requests in 119 s)."""
    p50, count = control_p50_ms(run)
    assert count >= 5, count  # about RUN_S / (0.05 + 0.2 s of thinking) = 12 when the loop is free
    assert p50 < 2 * DEMOBOT_ANSWER_MS, p50
    assert run.row("POST chat:common")["failures"] == 0


MIX = ("--user-mix", "WebSocketChatUser AudioStreamUser RestChatUser", "-u", "3", "-r", "10")


def test_a_ping_flood_is_cut_off_and_starves_no_one(hostile, demobot, run_locust, short_wav) -> None:
    bot = demobot(*CONTROL)
    run, wall_s = timed_run(run_locust, "--host", bot.url, *MIX, *aimed_at(hostile, "ping-flood"),
                            "--audio-file", short_wav)  # fmt: skip
    check_ended_well(run, wall_s)
    failures = failure_counts(run)
    assert set(failures) == {"ping flood"}, failures
    assert sum(row["failures"] for row in run.rows("WSR").values()) >= 1
    assert run.row("CALL audio:raw")["failures"] >= 1
    check_control(run)


def test_a_600_mb_frame_is_refused_from_its_header(hostile, demobot, run_locust, short_wav) -> None:
    bot = demobot(*CONTROL)
    run, wall_s = timed_run(run_locust, "--host", bot.url, *MIX, *aimed_at(hostile, "huge-frame"),
                            "--audio-file", short_wav)  # fmt: skip
    check_ended_well(run, wall_s)  # the peak RSS bound: before, the process took the whole frame (2.4 GB)
    failures = failure_counts(run)
    assert set(failures) == {"answer over 16 MB"}, failures
    assert sum(row["failures"] for row in run.rows("WSR").values()) >= 1
    assert run.row("CALL audio:raw")["failures"] >= 1
    check_control(run)


def test_a_reply_that_is_not_json_is_a_failure(hostile, run_locust) -> None:
    run, wall_s = timed_run(run_locust, "--host", hostile.url, "--skip-host-check", "--user-mix", "WebSocketChatUser",
                            "-u", "1", *aimed_at(hostile, "not-json"))  # fmt: skip
    check_ended_well(run, wall_s)
    failures = failure_counts(run)
    assert set(failures) == {"reply is not JSON"}, failures
    replies = run.rows("WSR")
    assert sum(row["count"] for row in replies.values()) == sum(row["failures"] for row in replies.values()) > 3


def test_a_redirect_loop_is_named_and_timed(hostile, run_locust, short_wav) -> None:
    run, wall_s = timed_run(run_locust, "--host", hostile.url, "--skip-host-check", "--user-mix",
                            "WebSocketChatUser AudioStreamUser", "-u", "2", *aimed_at(hostile, "redirect"),
                            "--audio-file", short_wav)  # fmt: skip
    check_ended_well(run, wall_s)
    failures = failure_counts(run)
    assert set(failures) == {"redirect loop"}, failures
    assert run.row("WS connect")["failures"] >= 1
    audio = run.row("CONNECT audio:raw")
    assert audio["failures"] == audio["count"] >= 1
    with (run.report_dir / "requests.csv").open() as file:
        connects = [row for row in csv.DictReader(file) if row["type"] == "CONNECT"]
    assert connects and all(float(row["response_time_ms"]) > 0 for row in connects)  # a failed CONNECT has its time
