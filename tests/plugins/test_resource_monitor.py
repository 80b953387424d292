"""The resource monitor's memory peak is the kernel's high-water mark, not the highest of its samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, LocustRun, clean_env

BURST_USER = ROOT / "tests" / "data" / "memory_burst_user.py"


def test_a_memory_burst_between_two_samples_is_in_the_peak(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    command = [sys.executable, "-m", "locust", "-f", f"locustfile.py,{BURST_USER}", "--headless", "--skip-report-page"]
    command += ["--user-mix", "MemoryBurstUser", "-u", "1", "-r", "1", "-t", "3s", "--host", "http://127.0.0.1:9"]
    command += ["--skip-host-check", "--monitor-interval", "2", "--report-dir", str(folder)]
    result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    run = LocustRun(result.returncode, result.stdout + result.stderr, folder)
    assert run.returncode == 0, run.output
    memory = run.summary["resources"]["processes"]["load generator"]["memory_mb"]
    # The 400 MB lived for 50 ms; samples 2 s apart see the process at its usual ~100 MB.
    assert memory["mean"] < 300 and memory["peak"] >= 400, memory
