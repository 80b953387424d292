"""Nothing is lost when a test ends: exchanges in flight are recorded as cut short, and the rows add up to what
demobot saw.

demobot answers after 400 ms and the users think for a random 50-150 ms, so about four exchanges in five are in
flight at any moment: a run's end almost surely interrupts some (a fixed think time can lock the users' cycles to
the end of -t: 6 cycles of 0.5 s each, all ended at 3 s). demobot's ``requests`` counter (generation requests
received, whatever their outcome) is the independent truth: every request it saw is a finished row or a
cut-short row, and a cut-short row is a request it saw or one that never left the client.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, clean_env
from tests.plugins.test_distributed import wait_for_requests

LOAD = ["--user-mix", "RestChatUser", "-u", "4", "-r", "4", "--think-time", "0.05-0.15"]


def wait_for_answers_in_progress(bot: Any, count: int) -> None:
    """Return once demobot is writing ``count`` answers at once (its 400 ms each leave the stop time to find them)."""
    deadline = time.monotonic() + 10
    while bot.stats()["active"] < count and time.monotonic() < deadline:
        time.sleep(0.005)


def statuses(folder: Path) -> Counter[str]:
    with (folder / "requests.csv").open() as file:
        return Counter(row["status"] for row in csv.DictReader(file))


def check_rows_add_up(folder: Path, served: int) -> dict:
    """requests.csv = summary.json's exchanges = what demobot saw (cut-short rows may not have been sent), but for the
    probe's question before the load, which is counted nowhere."""
    summary = json.loads((folder / "summary.json").read_text())
    served -= 1
    totals, rows = summary["totals"], statuses(folder)
    assert rows["cut short"] == totals["cut_short"] >= 1, (rows, totals)
    assert rows["ok"] + rows["failed"] == totals["count"], (rows, totals)
    assert totals["count"] <= served <= totals["count"] + totals["cut_short"], (served, totals)
    return summary


def test_exchanges_in_flight_at_the_run_time_limit_are_counted(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "400", "--token-ms", "0")
    run = run_locust("--host", bot.url, *LOAD, "-t", "3s")
    assert run.returncode == 0, run.output
    summary = check_rows_add_up(run.report_dir, bot.stats()["requests"])
    assert summary["totals"]["failures"] == 0 and summary["interrupted"] is False


def test_sigterm_stops_the_users_before_the_run_folder_is_written(demobot, tmp_path: Path) -> None:
    bot = demobot("--ttft-ms", "400", "--token-ms", "0")
    folder = tmp_path / "stopped"
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "-t", "60s", "--skip-report-page"]
    command += ["--host", bot.url]
    process = subprocess.Popen(
        [*command, *LOAD, "--report-dir", str(folder)],
        cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for_requests(folder, 8)
        wait_for_answers_in_progress(bot, 2)  # the stop must find exchanges in flight (CI once found all 4 thinking)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert time.monotonic() - signalled < 8, output  # users stopped, run folder written (a busy machine is slower)
    assert process.returncode == 4, output  # interrupted: README's exit codes
    served_at_exit = bot.stats()["requests"]
    time.sleep(0.5)
    assert bot.stats()["requests"] == served_at_exit, "requests reached demobot after the process ended"
    summary = check_rows_add_up(folder, served_at_exit)
    assert summary["interrupted"] is True and "Traceback" not in output
    assert output.index("Stopping the users") < output.index("Run folder:"), output


def test_websocket_replies_and_calls_in_flight_are_cut_short_too(demobot, run_locust) -> None:
    # The shipped utterance lasts 3.7 s, so no call of a 3 s run can end: each caller's one call is cut short.
    # A reply takes 5 s, so each of the four chat users is waiting for its first one at the stop. (With 600 ms replies
    # and 50-150 ms of thought between them, the four users kept in step, and once all four were between replies.)
    bot = demobot("--ttft-ms", "5000", "--token-ms", "0")
    run = run_locust(
        "--host", bot.url, "--user-mix", "WebSocketChatUser:2 AudioStreamUser:1", "-u", "6", "-r", "6", "-t", "3s",
        "--think-time", "0.05-0.15",
    )  # fmt: skip
    assert run.returncode == 0, run.output
    with (run.report_dir / "requests.csv").open() as file:
        cut = Counter(row["type"] for row in csv.DictReader(file) if row["status"] == "cut short")
    assert cut["CALL"] == 2 and cut["WSR"] == 4, cut
    assert run.summary["totals"]["cut_short"] == sum(cut.values())
    assert run.summary["audio"]["calls"]["cut_short"] == 2


def test_streamed_answers_the_loop_is_reading_are_cut_short_and_the_run_ends_on_time(demobot, run_locust) -> None:
    # Each answer takes 10 s (50 tokens 200 ms apart) and the run 2 s: the stop finds every user asleep while the event
    # loop reads its answer (users/llm/answer_reader.py). Each such answer is one cut-short row, and no user waits for
    # its answer's end.
    bot = demobot("--ttft-ms", "20", "--token-ms", "200", "--answer-tokens", "50")
    started = time.monotonic()
    run = run_locust(
        "--host", bot.url, "--user-mix", "StreamingChatUser", "-u", "3", "-r", "3", "-t", "2s", "--skip-probe"
    )
    assert run.returncode == 0 and "Traceback" not in run.output, run.output
    assert time.monotonic() - started < 9, "the stop waited for the answers"
    assert statuses(run.report_dir) == Counter({"cut short": 3}), statuses(run.report_dir)
    assert run.summary["totals"]["cut_short"] == 3 and run.summary["totals"]["count"] == 0, run.summary["totals"]
