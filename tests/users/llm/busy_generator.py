"""A locustfile to add beside locustfile.py (``-f locustfile.py,tests/users/llm/busy_generator.py``): it keeps the
load generator's event loop busy, as a loaded generator's is, so tests can check what a busy loop does to the times.

One greenlet holds the loop for BUSY_MS out of every BUSY_MS + FREE_MS without yielding (as a user parsing a large
answer, a garbage collection or a spawning batch would); it ends with the test, and after MAX_BUSY_S in any case.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING

BUSY_MS, FREE_MS = 12.0, 8.0
MAX_BUSY_S = 60.0
BUSY = "locustfile.py,tests/users/llm/busy_generator.py"
"""The -f of a run whose loop is held."""


def held_run(demobot: Any, run_locust: Any, log: Path, *args: str, think_time: str = "0") -> tuple[Any, list[dict]]:
    """A 5 s run of three users (``args`` pick them) with the loop held, against demobot answering 6 tokens 70 ms
    after a question and 15 ms apart; its run and demobot's timing log. Checks the loop was held."""
    bot = demobot("--ttft-ms", "70", "--token-ms", "15", "--answer-tokens", "6", "--timing-log", str(log))
    run = run_locust(
        "-f", BUSY, "--host", bot.url, *args, "-u", "3", "-t", "5s", "--think-time", think_time, "--skip-probe"
    )  # fmt: skip
    assert run.summary["generator"]["loop_lag_ms"]["p99"] >= 8, run.summary["generator"]
    return run, [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _hold_the_loop(environment: Any) -> None:
    ends = time.monotonic() + MAX_BUSY_S
    while time.monotonic() < ends and environment.runner.state not in (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP):
        busy_until = time.perf_counter() + BUSY_MS / 1000
        while time.perf_counter() < busy_until:
            pass
        gevent.sleep(FREE_MS / 1000)


@events.test_start.add_listener
def _busy_from_the_start(environment: Any, **_: Any) -> None:
    gevent.spawn(_hold_the_loop, environment)
