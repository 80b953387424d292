"""One run folder per test started from the web UI: Start, then Stop or the shape's end, writes a complete
folder named by that test's start (inside the run's report folder), its time axes starting at its Start.

Headless and --autostart runs keep one folder for the process (plugins/output/run_folder.py). In the web UI
the process's folder keeps run.log and resources.csv for the whole session; each test's folder gets Locust's
CSV files (written from its Start), requests.csv, its slice of resources.csv, summary.json and index.html.
The web UI links the last one ("Report of the last test", served at /chatswarm/last-test/).
"""

from __future__ import annotations

import csv
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import gevent
from flask import abort, send_from_directory
from locust import Events
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner

from core.paths import default_report_dir
from plugins.metrics.resource_monitor import ResourceMonitor
from plugins.output import run_folder
from plugins.output.request_log import RequestLog
from users.common import records

logger = logging.getLogger("chatswarm")

LAST_TEST_URL = "./chatswarm/last-test/"
"""Where the web UI serves the last test's folder (index.html first)."""

RESOURCES = "resources.csv"


class TestRuns:
    """This Environment's tests in the web UI: the process's folder, the last test's, the write under way."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.last: Path | None = None
        self.writing: gevent.Greenlet | None = None


def test_folder(base: Path, test_type: str, started: float) -> Path:
    """A new folder for a test started at ``started``: <base>/<type>-<YYYYmmdd-HHMMSS>[-N]."""
    path = default_report_dir(test_type, datetime.fromtimestamp(started), root=base)
    path.mkdir(parents=True)
    return path


def copy_resources(source: Path, target: Path, start: float, stop: float) -> None:
    """The samples of the session's resources.csv taken between the test's start and stop."""
    if not source.exists():
        return
    with source.open(newline="", encoding="utf-8") as given, target.open("w", newline="", encoding="utf-8") as kept:
        rows = csv.reader(given)
        writer = csv.writer(kept)
        writer.writerow(next(rows, ["time"]))
        writer.writerows(row for row in rows if row and start <= float(row[0]) <= stop + 1)


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    runs = records.existing(environment, TestRuns)
    folder = run_folder.current(environment)
    if runs is None or folder is None:
        return
    if runs.writing is not None:
        runs.writing.join()  # the previous test's folder is still being written
    options = environment.parsed_options
    folder.path = test_folder(runs.base, options.test_type, folder.started_at or time.time())
    options.html_file = str(folder.path / "report.html")
    folder.written = folder.interrupted = False
    folder.start_csv()


def _write(environment: Any, runs: TestRuns, folder: run_folder.RunFolder) -> None:
    log = records.existing(environment, RequestLog)
    if log is not None:
        log.close()
    monitor = records.existing(environment, ResourceMonitor)
    if monitor is not None:
        monitor.flush()
    copy_resources(runs.base / RESOURCES, folder.path / RESOURCES, folder.started_at or 0.0, time.time())
    folder.write()
    runs.last = folder.path
    runs.writing = None


def _on_test_stop(environment: Any, **_kwargs: Any) -> None:
    runs = records.existing(environment, TestRuns)
    folder = run_folder.current(environment)
    if runs is None or folder is None or folder.started_at is None or runs.writing is not None:
        return
    # A master waits for its workers' last reports (they send one every few seconds), a local runner has all.
    delay = WORKER_REPORT_INTERVAL + 1 if isinstance(environment.runner, MasterRunner) else 0
    runs.writing = gevent.spawn_later(delay, _write, environment, runs, folder)
    if not delay:
        runs.writing.join()


def _on_reset(environment: Any, **_kwargs: Any) -> None:
    """Reset (the web UI's button) zeroes every figure while the test runs: its folder covers the test from then."""
    folder = run_folder.current(environment)
    if records.existing(environment, TestRuns) is not None and folder is not None and folder.stopped_at is None:
        folder.started_at = time.time() if folder.started_at is not None else None


def _on_init(environment: Any, **_kwargs: Any) -> None:
    folder = run_folder.current(environment)
    if folder is None or not run_folder.one_folder_per_test(environment):
        return
    runs = records.state(environment, TestRuns, lambda: TestRuns(folder.path))
    web_ui = environment.web_ui
    web_ui.template_args.setdefault("extended_csv_files", []).append(
        {"href": LAST_TEST_URL, "title": "Report of the last test (its run folder)"}
    )

    @web_ui.app.route("/chatswarm/last-test/")
    @web_ui.app.route("/chatswarm/last-test/<path:name>")
    def _last_test(name: str = "index.html") -> Any:
        if runs.last is None:
            abort(404, "no test has ended yet")
        return send_from_directory(runs.last, name)


def last_test(environment: Any) -> Path | None:
    """The folder of the last test that ended in the web UI (None before, or outside the web UI)."""
    runs = records.existing(environment, TestRuns)
    return runs.last if runs else None


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, after the run folder's)."""
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.reset_stats.add_listener(_on_reset)
