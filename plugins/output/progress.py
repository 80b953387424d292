"""Machine-readable progress lines for scripts/run_tests.py, which turns them into one live status line.

With ``--progress`` the master (or local runner) prints ``chatswarm-progress {json}`` to stdout every
couple of seconds while a test runs. Extra fields (a shape's current step, say) come from PROGRESS_FIELDS.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
from locust import Events
from locust.runners import WorkerRunner

from core.metric_book import EXTRA_ROWS
from core.settings import Settings, setting
from plugins.metrics import book_keeper
from report.console import PROGRESS_PREFIX
from users.common import records

PROGRESS_INTERVAL_S = 2.0
"""Seconds between progress lines."""

PROGRESS_FIELDS: dict[str, Callable[[Any], Any]] = {}
"""Extra progress fields: name → function of the Environment."""


@dataclass(frozen=True)
class ProgressSettings(Settings):
    """Whether to print progress lines."""

    progress: bool = setting(
        False, "Print machine-readable progress lines (used by scripts/run_tests.py)", web_ui=False
    )


RATE_WINDOW_EMPTY_S = 3.0
"""Locust's current rate leaves out the last two seconds, so for the first seconds of a run it is 0."""


def _register(parser: Any, **_kwargs: Any) -> None:
    ProgressSettings.add_arguments(parser)


def progress(environment: Any, started_at: float) -> dict[str, Any]:
    """The current state of the run in a few numbers."""
    runner = environment.runner
    exchanges = book_keeper.keeper(environment).book.exchange_rows()  # TTFT, FANOUT, TTFA rows time an exchange
    rows = [entry for entry in runner.stats.entries.values() if (entry.method or "") not in EXTRA_ROWS]
    elapsed, requests = time.time() - started_at, sum(row.count for row in exchanges)
    rps = sum(entry.current_rps for entry in rows)
    if elapsed < RATE_WINDOW_EMPTY_S and not rps and requests:  # the mean so far, until Locust's rate has a second
        rps = requests / max(elapsed, 1.0)
    state: dict[str, Any] = {
        "elapsed_s": round(elapsed, 1),
        "run_time_s": environment.parsed_options.run_time,
        "users": runner.user_count,
        "requests": requests,
        "failures": sum(row.failures for row in exchanges),
        "rps": round(rps, 2),
    }
    for name, field in PROGRESS_FIELDS.items():
        state[name] = field(environment)
    return state


def _report(environment: Any) -> None:
    started_at = time.time()
    while True:
        gevent.sleep(PROGRESS_INTERVAL_S)
        sys.stdout.write(PROGRESS_PREFIX + json.dumps(progress(environment, started_at)) + "\n")
        sys.stdout.flush()


class ProgressReporter:
    """Prints a progress line every PROGRESS_INTERVAL_S while a test runs (master or local runner)."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.greenlet: gevent.Greenlet | None = None

    def on_test_start(self, **_kwargs: Any) -> None:
        self.on_test_stop()
        self.greenlet = gevent.spawn(_report, self.environment)

    def on_test_stop(self, **_kwargs: Any) -> None:
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
            self.greenlet = None


def _on_init(environment: Any, **_kwargs: Any) -> None:
    wanted = ProgressSettings.read(environment.parsed_options).progress
    if environment.parsed_options is None or not wanted or isinstance(environment.runner, WorkerRunner):
        return
    reporter = records.state(environment, ProgressReporter, lambda: ProgressReporter(environment))
    environment.events.test_start.add_listener(reporter.on_test_start)
    environment.events.test_stop.add_listener(reporter.on_test_stop)


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init_command_line_parser.add_listener(_register)
    events.init.add_listener(_on_init)
