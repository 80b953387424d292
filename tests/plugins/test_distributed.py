"""Distributed runs and a generator in trouble: a master with local workers through scripts/run_tests.py, a
worker killed mid-run, and Ctrl-C or SIGTERM in the middle of a run (local and distributed)."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import ROOT, RUN_TESTS, clean_env, run_tests

SMALL_BOT = ("--slots", "4", "--ttft-ms", "50", "--token-ms", "5", "--answer-tokens", "10")


def summary_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text())


def wait_for_requests(folder: Path, at_least: int, timeout_s: float = 30) -> None:
    """Wait until Locust's stats history (written every second) shows some requests."""
    deadline = time.monotonic() + timeout_s
    history = folder / "stats_stats_history.csv"
    while time.monotonic() < deadline:
        if history.exists():
            with history.open() as file:
                rows = list(csv.DictReader(file))
            if any(row["Name"] == "Aggregated" and int(row["Total Request Count"] or 0) >= at_least for row in rows):
                return
        time.sleep(0.3)
    raise AssertionError(f"no {at_least} requests within {timeout_s} s")


@pytest.mark.timing
def test_streaming_pid_across_two_workers_keeps_the_configured_timings(demobot, tmp_path: Path) -> None:
    bot = demobot(*SMALL_BOT)  # 50 ms to the first token, then 5 ms a token, 10 tokens, 4 answers at once
    folder = tmp_path / "distributed"
    result = run_tests(
        "stream", "--host", bot.url, "--workers", "2", "--duration", "20s", "--report-dir", str(folder), "--",
        "--user-mix", "StreamingChatUser", "--think-time", "0", "--shape", "pid", "--latency-percentile",
        "ttft_p95", "--target-latency", "200", "--start-users", "2", "--max-users", "30", "--control-window", "4",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = summary_of(folder)
    workers = summary["workers"]
    assert workers["seen"] == 2 and workers["lost"] == 0, workers
    assert all(worker["requests"] > 0 for worker in workers["by_worker"]), workers
    assert sum(worker["requests"] for worker in workers["by_worker"]) == summary["totals"]["count"]
    # The controller drove the workers: it added users until queueing lifted TTFT p95 towards 200 ms.
    shape = summary["shape"]
    assert shape["name"] == "pid" and max(point["users"] for point in shape["trace"]) >= 4, shape
    # Every answer of both workers is in the merged LLM figures, and the figures that do not depend on the
    # load are demobot's: 10 tokens an answer exactly, 5 ms between tokens (a merge that dropped or
    # double-counted a worker's answers fails the counts; one that averaged gaps wrongly, the timings).
    llm = summary["llm"]
    e2e = sum(row["count"] for name, row in summary["requests"].items() if name.startswith("E2E"))
    assert llm["requests"] == e2e and llm["ttft_ms"]["count"] == e2e
    assert llm["output_tokens"] == 10 * e2e
    assert llm["itl_ms"]["count"] == 9 * e2e
    for metric in ("itl_ms", "tpot_ms"):
        assert 4 < llm[metric]["p50"] < 7.5, (metric, llm[metric])
    assert llm["ttft_ms"]["p95"] > 1.5 * 50, llm["ttft_ms"]  # the queueing the controller was after


@pytest.mark.startup
def test_lost_workers_leave_the_master_running_and_their_numbers_kept(demobot, tmp_path: Path) -> None:
    """Of three workers one dies (SIGKILL) and one is stopped on its machine (SIGTERM); the third goes on."""
    bot = demobot("--ttft-ms", "20", "--token-ms", "1")
    folder = tmp_path / "lost"
    command = [*RUN_TESTS, "smoke", "--host", bot.url, "--workers", "3", "--users", "6", "--duration", "20s"]
    command += ["--report-dir", str(folder), "--", "--think-time", "0.2"]
    runner = subprocess.Popen(command, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_requests(folder, 30)
        workers = [p for p in psutil.Process(runner.pid).children(recursive=True) if "--worker" in p.cmdline()]
        assert len(workers) == 3
        workers[0].kill()
        workers[1].terminate()
        output, _ = runner.communicate(timeout=60)
    finally:
        runner.kill()
    assert runner.returncode == 0, output
    summary = summary_of(folder)
    book = summary["workers"]
    assert book["seen"] == 3 and book["lost"] == 2, book
    lost = [worker for worker in book["by_worker"] if worker["lost_after_s"] is not None]
    assert all(worker["requests"] > 0 and 2 < worker["lost_after_s"] < 20 for worker in lost), book
    # What the lost workers reported stays in the totals; the third worker went on to the end.
    assert sum(worker["requests"] for worker in book["by_worker"]) == summary["totals"]["count"]
    assert summary["duration_s"] >= 19
    assert sum("was lost" in note for note in summary["notes"]) == 2, summary["notes"]
    assert "NOTE: worker" in output and "was lost" in (folder / "index.html").read_text()


@pytest.mark.parametrize(
    ("how", "signum"),
    [("locust", signal.SIGTERM), ("run_tests", signal.SIGINT), ("run_tests --workers 2", signal.SIGTERM)],
)
def test_an_interrupted_run_still_writes_its_run_folder(demobot, tmp_path: Path, how: str, signum: int) -> None:
    folder = tmp_path / "interrupted"
    load = ["--user-mix", "RestChatUser", "--think-time", "0.1"]
    if how == "locust":
        bot = demobot("--ttft-ms", "20", "--token-ms", "1")
        command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "-u", "3", "-t", "60s"]
        command += ["--host", bot.url, "--report-dir", str(folder), *load]
    else:  # run_tests starts (and must stop) a demo chatbot of its own
        command = [*RUN_TESTS, "smoke", *how.split()[1:], "--users", "3", "--duration", "60s"]
        command += ["--report-dir", str(folder), "--", *load]
    process = subprocess.Popen(
        command, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for_requests(folder, 10)
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signum)
        output, _ = process.communicate(timeout=45)
    finally:
        process.kill()
    assert process.returncode == 4, output  # interrupted
    assert "Traceback" not in output, output
    for name in ("report.html", "stats_stats.csv", "stats_stats_history.csv", "requests.csv", "index.html"):
        assert (folder / name).stat().st_size > 0, name
    summary = summary_of(folder)
    assert summary["interrupted"] is True and summary["duration_s"] < 40
    assert summary["totals"]["count"] >= 10
    with (folder / "requests.csv").open() as file:  # every exchange, the ones cut short by the stop included
        assert sum(1 for _ in csv.DictReader(file)) == summary["totals"]["count"] + summary["totals"]["cut_short"]
    assert any(note.startswith("interrupted after") for note in summary["notes"])
    assert "interrupted after" in (folder / "index.html").read_text().lower()
    alive = psutil.wait_procs(children, timeout=10)[1]
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
