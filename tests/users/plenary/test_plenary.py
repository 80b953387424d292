"""PlenaryUser: stamps, order checks and delivery accounting as plain logic, then real headless Locust
runs against demobot's rooms (known broadcast delay, known loss share, leaving and rejoining, room
capacity, worker slices) and against the Django Channels tutorial chat served by daphne on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import InputError
from tests.conftest import ROOT, LocustRun, two_workers
from users.plenary.plenary_metrics import PlenaryStats, ReceiverLog, Stamp, read_stamp, stamp_text
from users.plenary.plenary_settings import UserNumbers, user_range

PLENARY = ("--user-mix", "PlenaryUser", "--spawn-rate", "50")
CHANNELS_APP = ROOT / "tests" / "channels_app"


def plenary(run: LocustRun) -> dict:
    return run.summary["plenary"]


# --- plain logic ---------------------------------------------------------------------------------


def test_a_stamp_travels_inside_the_text() -> None:
    text = stamp_text(42, 7, 120, now_wall=1_700_000_000.25, now_perf_ns=123456789)
    assert len(text) == 120
    stamp = read_stamp(text)
    assert stamp is not None and (stamp.sender, stamp.seq, stamp.sent_perf_ns) == (42, 7, 123456789)
    assert stamp.sent_wall == pytest.approx(1_700_000_000.25)
    assert read_stamp("hello everyone") is None and read_stamp("#csw 1 x") is None
    assert len(stamp_text(1, 1, 5)) > 5  # never cut below the stamp


def test_receivers_count_duplicates_and_reordering() -> None:
    stats, log = PlenaryStats(), ReceiverLog(drain_s=1.0)
    log.join(100.0)

    def receive(sender: int, seq: int) -> bool:
        reception = log.receive(Stamp(sender, seq, 110.0 + seq / 100, "p", 0))
        stats.add_reception(reception)
        return reception.first

    assert [receive(1, 1), receive(1, 2), receive(1, 4), receive(1, 3), receive(1, 3), receive(2, 9)] == [
        True,
        True,
        True,
        True,
        False,
        True,
    ]
    assert (stats.delivered, stats.duplicates, stats.out_of_order) == (5, 1, 1)


def test_expected_counts_members_stably_in_the_room() -> None:
    stats = PlenaryStats()
    for sent in (10.0, 20.0, 30.0, 40.0):
        stats.message_sent("hall", sent)
    stats.message_sent("other", 20.0)
    stats.spells += [("hall", 0.0, 50.0), ("hall", 19.5, 40.5), ("hall", 35.0, 36.0)]
    # drain 1 s: the first spell hears all four, the second 30 only (20 is too soon after joining,
    # 40 too close to leaving), the third is too short for anything.
    assert stats.expected(drain_s=1.0) == 5


def test_messages_around_a_leave_are_in_transition() -> None:
    stats, log = PlenaryStats(), ReceiverLog(drain_s=2.0)
    log.join(0.0)
    for sent in (1.0, 5.0, 9.0, 9.5):  # 1.0 is before the drain period after joining
        stats.add_reception(log.receive(Stamp(1, int(sent * 10), sent, "p", 0)))
    stats.add_left(log.leave("hall", 10.0))  # 9.0 and 9.5 were sent within 2 s of leaving
    for sent in (1.0, 5.0, 9.0, 9.5):
        stats.message_sent("hall", sent)
    assert (stats.delivered, stats.in_transition) == (1, 3)
    assert stats.expected(drain_s=2.0) == 1
    summary = stats.summary(drain_s=2.0)
    assert summary["lost"] == 0 and summary["completeness"] == 1.0


def test_figures_merge_as_the_master_does() -> None:
    worker, master = PlenaryStats(), PlenaryStats()
    worker.message_sent("hall", 5.0)
    worker.spells.append(("hall", 0.0, 10.0))
    worker.delivered, worker.duplicates = 1, 2
    worker.fanout["echo"].add(12.5)
    master.merge_message(worker.to_message())
    master.merge_message(worker.to_message())
    summary = master.summary(drain_s=1.0)
    assert (summary["messages_sent"], summary["expected"], summary["delivered"]) == (2, 4, 2)
    assert summary["lost"] == 2 and summary["duplicates"] == 4 and summary["fanout_ms"]["echo"]["count"] == 2


def test_user_ranges_split_over_workers() -> None:
    class Options:
        user_range_min, user_range_max = 100, 199

    assert user_range(Options, 0, 1) == (100, 199)
    assert [user_range(Options, i, 3) for i in range(3)] == [(100, 132), (133, 165), (166, 199)]
    Options.user_range_max = -1
    assert user_range(Options, 2, 3) == (200_100, None)
    Options.user_range_max = 101
    with pytest.raises(InputError, match="cannot be split over 3"):
        user_range(Options, 0, 3)
    numbers = UserNumbers()
    numbers.configure(5, 6)
    assert [numbers.take(), numbers.take(), numbers.take()] == [5, 6, None]
    numbers.give_back(5)
    assert numbers.take() == 5


# --- real runs against demobot -------------------------------------------------------------------


@pytest.mark.timing
def test_fanout_latency_matches_the_broadcast_delay(demobot, run_locust) -> None:
    bot = demobot("--broadcast-delay-ms", "200")
    run = run_locust(
        "--host", bot.url, *PLENARY, "-u", "8", "-t", "6s", "--chat-interval", "0.4", "--drain-time", "0.5"
    )
    assert run.returncode == 0, run.output
    for name in ("echo", "peers"):
        row = run.row(f"FANOUT {name}")
        assert row["count"] > 20 and row["failures"] == 0
        assert 200 <= row["p50_ms"] <= 212 and row["p99_ms"] < 240, row
    assert run.row("POST register")["count"] == 8 and run.row("POST login")["count"] == 8
    assert run.row("WS join")["count"] == 8 and run.row("WS connect")["count"] == 8
    section = plenary(run)
    assert section["lost"] == 0 and section["duplicates"] == 0 and section["expected"] > 100
    assert section["delivered"] == section["expected"]
    fanout = section["fanout_ms"]["peers"]
    assert 200 <= fanout["p50"] <= 212
    assert bot.stats()["registrations"] == 8
    # Each message said is an exchange; FANOUT rows time its receptions and are not counted again.
    messages = run.row("WS message")
    assert messages["count"] == section["messages_sent"] > 50 and messages["failures"] == 0
    assert run.summary["totals"]["count"] == 4 * 8 + messages["count"]


def test_losses_match_the_share_the_server_drops(demobot, run_locust) -> None:
    bot = demobot("--broadcast-drop-rate", "0.25", "--seed", "3")
    run = run_locust(
        "--host", bot.url, *PLENARY, "-u", "12", "-t", "6s", "--chat-interval", "0.2-0.4", "--drain-time", "0.5"
    )
    assert run.returncode == 0, run.output
    section = plenary(run)
    assert section["expected"] > 1000
    assert section["lost"] / section["expected"] == pytest.approx(0.25, abs=0.04), section
    assert section["delivered"] + section["lost"] == section["expected"]


def test_leaving_and_rejoining_loses_nothing(demobot, run_locust) -> None:
    bot = demobot("--broadcast-delay-ms", "20")
    run = run_locust(
        "--host", bot.url, *PLENARY, "-u", "10", "-t", "6s", "--chat-interval", "0.2-0.4",
        "--leave-probability", "0.2", "--drain-time", "0.3", "--rooms", "2",
    )  # fmt: skip
    assert run.returncode == 0, run.output
    section = plenary(run)
    assert section["joins"] > 15 and section["leaves"] == section["joins"]
    assert section["lost"] == 0 and section["completeness"] == 1.0, section
    assert section["in_transition"] > 0 and section["rooms"] == 2


def test_a_stop_ends_idle_participants_waits_at_once(demobot, run_locust) -> None:
    """Participants wait parked (users/common/parking.py) where Locust waits, the first wait too: with an hour's
    interval and a 60 s --stop-timeout, the test ends when -t says (the first wait used to hold the stop)."""
    bot = demobot()
    start = time.monotonic()
    run = run_locust(
        "--host", bot.url, *PLENARY, "-u", "4", "-t", "3s", "--chat-interval", "3600", "--stop-timeout", "60",
    )  # fmt: skip
    assert run.returncode == 0, run.output
    assert time.monotonic() - start < 25  # a stop held by the wait: over 60 s
    assert run.row("WS join")["count"] == 4 and plenary(run)["joins"] == 4


def test_a_full_room_refuses_joins_as_a_server_error(demobot, run_locust) -> None:
    bot = demobot("--room-capacity", "3")
    run = run_locust("--host", bot.url, *PLENARY, "-u", "5", "-t", "3s", "--chat-interval", "0.5")
    assert run.returncode == 1, run.output
    join = run.row("WS join")
    assert join["failures"] >= 2 and join["count"] - join["failures"] == 3
    assert {f["error"] for f in run.summary["failures"]} == {"closed 1013 room full"}
    assert run.summary["websocket"]["errors"]["server"] == join["failures"]


def test_workers_take_their_own_usernames(demobot, run_locust) -> None:
    bot = demobot("--broadcast-delay-ms", "10")
    run = run_locust(
        "--host", bot.url, *PLENARY, "-u", "10", "-t", "6s", "--chat-interval", "0.3", "--drain-time", "0.3",
        "--user-range-min", "0", "--user-range-max", "9", *two_workers(),
    )  # fmt: skip
    assert run.returncode == 0, run.output
    # Ten distinct accounts (a second user on one account would get 409 and not register again).
    assert bot.stats()["registrations"] == 10 and run.row("POST register")["count"] == 10
    section = plenary(run)
    assert section["lost"] == 0 and section["expected"] > 100 and section["joins"] == 10
    assert run.row("FANOUT peers")["count"] > 100


# --- the Django Channels tutorial chat, served by daphne ------------------------------------------


@pytest.fixture(scope="module")
def channels_chat() -> Iterator[str]:
    """The Channels tutorial chat app on a free loopback port; yields its http:// URL."""
    pytest.importorskip("daphne")
    pytest.importorskip("channels")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "mysite.asgi:application"]
    server = subprocess.Popen(command, cwd=CHANNELS_APP, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"daphne did not start: {server.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_plenary_runs_against_the_channels_tutorial_chat(channels_chat, run_locust) -> None:
    run = run_locust(
        "--host", channels_chat, *PLENARY, "--plenary-protocol", "channels", "-u", "8", "-t", "6s",
        "--chat-interval", "0.3", "--drain-time", "0.5", "--origin", channels_chat,
    )  # fmt: skip
    assert run.returncode == 0, run.output
    rows = run.rows()
    assert {key.split()[0] for key in rows} == {"WS", "FANOUT"}, rows  # no registration, no login
    assert run.row("WS join")["count"] == 8
    assert run.row("FANOUT peers")["count"] > 100 and run.row("FANOUT peers")["p50_ms"] < 100
    section = plenary(run)
    assert section["protocol"] == "channels" and section["expected"] > 100
    assert section["lost"] == 0 and section["duplicates"] == 0 and section["out_of_order"] == 0


def test_a_foreign_origin_is_refused_as_a_client_error(channels_chat, run_locust) -> None:
    run = run_locust(
        "--host", channels_chat, *PLENARY, "--plenary-protocol", "channels", "-u", "2", "-t", "2s",
        "--origin", "http://evil.example", "--skip-probe",  # the probe would rightly stop the start at the 403
    )  # fmt: skip
    assert run.returncode == 1
    assert run.summary["websocket"]["client_error_rate"] == 1.0
    assert {f["error"] for f in run.summary["failures"]} == {"handshake HTTP 403 Forbidden"}


def test_bad_plenary_options_are_one_line_errors(run_locust, tmp_path: Path) -> None:
    run = run_locust("--host", "http://127.0.0.1:9", "--skip-host-check", *PLENARY, "--leave-probability", "2")
    assert run.returncode == 2 and "--leave-probability: must be a number from 0 to 1" in run.output
    assert "Traceback" not in run.output


def test_idle_participants_share_their_settings_and_keep_a_small_instance_dict(monkeypatch) -> None:
    """What 10,000 idle participants per process rests on (docs/PERFORMANCE.md): options read once and shared,
    at most 28 attributes (a shared-key instance dict of ~300 bytes instead of a 1.6 KB table)."""
    from locust.argument_parser import parse_options
    from locust.env import Environment

    import locustfile  # noqa: F401 - registers every option
    from users.plenary.plenary_user import PlenaryUser

    monkeypatch.setattr(PlenaryUser, "host", "http://127.0.0.1:9")
    options = parse_options(["-f", "locustfile.py", "--host", "http://127.0.0.1:9"])
    environment = Environment(user_classes=[PlenaryUser], parsed_options=options)
    first, second = PlenaryUser(environment), PlenaryUser(environment)
    assert first.plenary is second.plenary and first.settings is second.settings
    assert first.answer_settings is second.answer_settings and first.limits is second.limits
    locust_adds = {"_state", "_greenlet", "_taskset_instance"}  # when the user starts
    assert len(vars(first).keys() | locust_adds) <= 28, sorted(vars(first))
