"""Machine-readable progress lines for scripts/run_tests.py, which turns them into one live status line.

With ``--progress`` the master (or local runner) prints ``chatswarm-progress {json}`` to stdout every
couple of seconds while a test runs. Extra fields (a shape's current step, say) come from PROGRESS_FIELDS.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust import Events
from locust.runners import WorkerRunner

from core.options import add_option
from report.console import PROGRESS_PREFIX

PROGRESS_INTERVAL_S = 2.0
"""Seconds between progress lines."""

PROGRESS_FIELDS: dict[str, Callable[[Any], Any]] = {}
"""Extra progress fields: name → function of the Environment."""

_greenlet: gevent.Greenlet | None = None


def _register(parser: Any, **_kwargs: Any) -> None:
    add_option(
        parser,
        "--progress",
        action="store_true",
        default=False,
        include_in_web_ui=False,
        help="Print machine-readable progress lines (used by scripts/run_tests.py)",
    )


def progress(environment: Any, started_at: float) -> dict[str, Any]:
    """The current state of the run in a few numbers."""
    runner = environment.runner
    total = runner.stats.total
    state: dict[str, Any] = {
        "elapsed_s": round(time.time() - started_at, 1),
        "run_time_s": environment.parsed_options.run_time,
        "users": runner.user_count,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rps": round(total.current_rps, 2),
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


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    global _greenlet
    options = environment.parsed_options
    if options is None or not options.progress or isinstance(environment.runner, WorkerRunner):
        return
    if _greenlet is not None:
        _greenlet.kill(block=False)
    _greenlet = gevent.spawn(_report, environment)


def _on_test_stop(**_kwargs: Any) -> None:
    global _greenlet
    if _greenlet is not None:
        _greenlet.kill(block=False)
        _greenlet = None


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init_command_line_parser.add_listener(_register)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
