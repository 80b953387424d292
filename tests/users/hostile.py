"""What every hostile-target test checks: the run ends within its -t + 5 s, with no traceback."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.conftest import LocustRun

GRACE_S = 5.0
"""How long past its -t a run against a hostile target may take to end (start-up and the run folder included)."""


def hostile_run(run_locust: Callable[..., LocustRun], host: str, seconds: int, *args: str) -> LocustRun:
    """Run Locust for ``seconds`` against ``host``; check it ended in time and printed no traceback."""
    started = time.monotonic()
    run = run_locust("--host", host, "-t", f"{seconds}s", "--skip-host-check", *args)
    elapsed = time.monotonic() - started
    assert elapsed < seconds + GRACE_S, f"the run took {elapsed:.1f} s for -t {seconds}s"
    assert "Traceback" not in run.output, run.output
    return run


def peak_rss_mb(run: LocustRun) -> float:
    """The load generator's peak memory in the run (give it --monitor-interval 0.5)."""
    processes: dict[str, Any] = run.summary["resources"]["processes"]
    return processes["load generator"]["memory_mb"]["peak"]
