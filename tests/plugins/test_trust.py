"""The run judges its own trust: a light run is trustworthy; a client that blocks its event loop is not, even
with CPU well under Locust's warning (plugins/output/trust.py, plugins/metrics/loop_lag.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plugins.output.trust import GENERATOR_TRUST_CPU, LOOP_LAG_BOUND_MS
from tests.conftest import ROOT, LocustRun, clean_env

BUSY_USER = ROOT / "tests" / "data" / "busy_user.py"
"""A user that busy-waits 20 ms every 100 ms: its process's event loop is late by up to 20 ms at every turn."""


@pytest.mark.timing
def test_a_light_run_is_trustworthy_and_says_how_late_its_loop_was(demobot, run_locust) -> None:
    bot = demobot()
    run = run_locust("--host", bot.url, "-u", "2", "-r", "2", "-t", "4s", "--think-time", "0.2")
    assert run.returncode == 0, run.output
    generator = run.summary["generator"]
    assert generator["trustworthy"] is True, generator
    assert 0 <= generator["loop_lag_ms"]["p50"] <= generator["loop_lag_ms"]["p99"] <= LOOP_LAG_BOUND_MS
    assert "NOT TRUSTWORTHY" not in run.output and run.summary["notes"] == []


def test_a_client_that_blocks_its_event_loop_is_flagged_though_cpu_is_low(demobot, tmp_path: Path) -> None:
    bot = demobot()
    folder = tmp_path / "run"
    command = [sys.executable, "-m", "locust", "-f", f"locustfile.py,{BUSY_USER}", "--headless", "--skip-report-page"]
    command += ["--host", bot.url, "--user-mix", "BusyUser:1 RestChatUser:1", "-u", "4", "-r", "4", "-t", "6s"]
    command += ["--think-time", "0.2", "--report-dir", str(folder)]
    result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    run = LocustRun(result.returncode, result.stdout + result.stderr, folder)
    assert run.returncode == 0, run.output  # untrustworthy is a warning, not a failed run
    generator = run.summary["generator"]
    assert generator["trustworthy"] is False
    assert (
        generator["peak_cpu_percent"] < GENERATOR_TRUST_CPU and not generator["cpu_warning"]
    )  # CPU alone would pass it
    assert generator["loop_lag_ms"]["p99"] >= 10  # each block is 20 ms: the probe sees most of it
    assert generator["reasons"] == [
        f"its event loop woke up late (lag p99 {generator['loop_lag_ms']['p99']:g} ms > 5 ms)"
    ]
    assert generator["latency_error_bound_ms"] >= generator["loop_lag_ms"]["p99"]
    assert "NOT TRUSTWORTHY" in run.output
    assert any("NOT TRUSTWORTHY" in note for note in run.summary["notes"])
