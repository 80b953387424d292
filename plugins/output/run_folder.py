"""The run folder: every run writes Locust's HTML and CSV reports and summary.json into one folder.

``--report-dir`` (default ``reports/<test-type>-<timestamp>``) works for plain ``locust`` runs as well as
for ``scripts/run_tests.py``. Only the master (or a local runner) writes; workers send their numbers to it.
Later parts add their own sections to summary.json through ``SUMMARY_SECTIONS``.
"""

from __future__ import annotations

import csv
import json
import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from locust import Events, stats
from locust.html import get_html_report
from locust.runners import WorkerRunner

from core.paths import default_report_dir
from core.redaction import redact
from core.target import shown_url
from report import summary, verdict
from users.common import records

logger = logging.getLogger("chatswarm")

INTERRUPTED_EXIT_CODE = 4
"""Exit code of a run stopped before its end (SIGTERM, Ctrl-C): its report holds what was measured until then."""

CSV_PREFIX = "stats"
"""Locust's CSV files in the run folder are stats_stats.csv, stats_stats_history.csv, stats_failures.csv …"""

SUMMARY_SECTIONS: dict[str, Callable[[Any, float], Any]] = {}
"""Extra summary.json sections: name → function(environment, duration_s) returning the section or None."""


def add_section(name: str, section: Callable[[Any, float], Any]) -> None:
    """Add a summary.json section (a plugin's register calls it): function(environment, duration_s) → value or None."""
    SUMMARY_SECTIONS[name] = section


def add_note(environment: Any, note: str) -> None:
    """Add a note to this run's report (once); a process without a run folder (a worker) keeps none."""
    folder = current(environment)
    if folder is not None and note not in folder.notes:
        folder.notes.append(note)


def one_folder_per_test(environment: Any) -> bool:
    """Whether each test started in the web UI writes a folder of its own (headless, --autostart: one per run)."""
    options = environment.parsed_options
    return environment.web_ui is not None and not (options.headless or options.autostart)


def current(environment: Any) -> RunFolder | None:
    """This Environment's run folder (None on workers and before init)."""
    return records.existing(environment, RunFolder)


class RunFolder:
    """One run's report folder and what goes into it."""

    def __init__(self, environment: Any, path: Path) -> None:
        self.environment = environment
        self.path = path
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.interrupted = False
        self.written = False
        """Whether this folder was written (the web UI's tests each write theirs when they stop)."""
        self.answer_lines: list[str] = []
        """The run's answer and headline figures, logged last (after Locust's own tables)."""
        self.notes: list[str] = []
        """Things a reader of the report must know about this run (interrupted, a worker lost …): summary.json's
        ``notes``, shown at the top of index.html and of the console summary."""
        self._csv_writer: stats.StatsCSVFileWriter | None = None
        self._csv_greenlet: gevent.Greenlet | None = None

    @property
    def duration_s(self) -> float:
        """Wall time of the measured window, from test start to stop (or now)."""
        if self.started_at is None:
            return 0.0
        return (self.stopped_at or time.time()) - self.started_at

    def start_csv(self) -> None:
        """Write Locust's CSV files, with full history, unless the user asked for --csv elsewhere."""
        if self.environment.parsed_options.csv_prefix:
            return
        # Not through options.csv_prefix: Locust reads that before init and would start a second writer.
        self._csv_writer = stats.StatsCSVFileWriter(
            self.environment, stats.PERCENTILES_TO_REPORT, str(self.path / CSV_PREFIX), full_history=True
        )
        self._csv_greenlet = gevent.spawn(self._csv_writer.stats_writer)

    def finish_csv(self) -> None:
        """Stop the periodic writer and rewrite the totals so the files end with the final figures."""
        if self._csv_writer is None:
            return
        if self._csv_greenlet is not None:
            self._csv_greenlet.kill(block=True)
        writer, self._csv_writer = self._csv_writer, None
        writer.close_files()
        prefix = writer.base_filepath
        for suffix, write in (("stats", writer.requests_csv), ("failures", writer.failures_csv)):
            with open(f"{prefix}_{suffix}.csv", "w", newline="") as file:
                write(csv.writer(file))

    def write_html(self) -> None:
        """Locust's HTML report, unless Locust already wrote it (it skips it on SIGTERM)."""
        html_file = Path(self.environment.parsed_options.html_file)
        if not html_file.exists():
            html_file.parent.mkdir(parents=True, exist_ok=True)
            html = redact(get_html_report(self.environment, show_download_link=False))
            html_file.write_text(html, encoding="utf-8")

    def summary(self) -> dict[str, Any]:
        """summary.json's content: the base keys of DESIGN.md plus every registered section."""
        environment = self.environment
        runner_stats = environment.runner.stats
        duration = self.duration_s
        started = datetime.fromtimestamp(self.started_at or time.time(), UTC)
        content: dict[str, Any] = {
            "test_type": environment.parsed_options.test_type,
            "host": shown_url(environment.host or ""),
            "started": started.isoformat(timespec="seconds"),
            "duration_s": round(duration, 3),
            "interrupted": self.interrupted,
            "failures": summary.failure_list(runner_stats),  # requests and totals: the metric book's sections
        }
        for name, section in SUMMARY_SECTIONS.items():
            value = section(environment, duration)
            if value is not None:
                content[name] = value
        content["notes"] = list(self.notes)
        judged = content.setdefault("verdict", {})
        judged["answer"] = verdict.answer(content)
        if "assessment" in judged:
            judged["assessment"] = verdict.assessment(content)
        return content

    def log_answer(self, **_kwargs: Any) -> None:
        """Log the answer: Locust's ``quit`` event comes after its stats tables, so these are the last lines."""
        for line in self.answer_lines:
            logger.info(line)

    def write(self) -> None:
        """Write the whole folder: Locust's HTML and CSV, summary.json, the answer, index.html."""
        if self.interrupted:
            note = f"interrupted after {self.duration_s:.0f} s: the report holds what was measured until then"
            add_note(self.environment, note)
            logger.warning("Run interrupted: writing what was measured to %s", self.path)
            self.environment.process_exit_code = INTERRUPTED_EXIT_CODE
        self.write_html()
        self.finish_csv()
        content = self.write_summary()
        self.written = True
        self.answer_lines = [*verdict.headline(content), f"ANSWER: {content['verdict']['answer']}"]
        if getattr(self.environment.parsed_options, "skip_report_page", False):
            logger.info("Run folder: %s (index.html skipped: scripts/report.py %s builds it)", self.path, self.path)
            return
        try:
            from report.page import build_report  # pandas and matplotlib only when the run ends

            build_report(self.path)
        except Exception as error:  # the run's numbers are saved already; a page problem must not hide them
            logger.error("Could not build index.html (scripts/report.py %s rebuilds it): %s", self.path, error)
        logger.info("Run folder: %s", self.path)

    def write_summary(self) -> dict[str, Any]:
        """Write summary.json and return its content."""
        content = self.summary()
        text = redact(json.dumps(content, indent=2, default=str))  # a section may quote what the target said
        (self.path / "summary.json").write_text(text + "\n", encoding="utf-8")
        return content


def _on_init(environment: Any, runner: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or isinstance(runner, WorkerRunner):
        return
    path = Path(options.report_dir) if options.report_dir else default_report_dir(options.test_type)
    path.mkdir(parents=True, exist_ok=True)
    options.report_dir = str(path)
    if not options.html_file:
        options.html_file = str(path / "report.html")
    folder = records.state(environment, RunFolder, lambda: RunFolder(environment, path))
    if not one_folder_per_test(environment):  # else each test starts its own (plugins/web/test_runs.py)
        folder.start_csv()
    log_file = logging.FileHandler(path / "run.log", encoding="utf-8")
    log_file.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s/%(name)s: %(message)s"))
    logging.getLogger().addHandler(log_file)
    if not logging.getLogger("locust").propagate:  # Locust's logging setup keeps its records from the root logger
        logging.getLogger("locust").addHandler(log_file)
    _note_ctrl_c(folder)
    environment.events.quit.add_listener(folder.log_answer)


def _note_ctrl_c(folder: RunFolder) -> None:
    """Mark the run interrupted on Ctrl-C during a test; Locust then stops it as if it had ended."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:  # started in the background: Ctrl-C is not for this process
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if folder.started_at is not None and folder.stopped_at is None:
            folder.interrupted = True
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    folder = current(environment)
    if folder is not None:
        folder.started_at, folder.stopped_at = time.time(), None
        folder.notes.clear()


def _on_test_stop(environment: Any, **_kwargs: Any) -> None:
    folder = current(environment)
    if folder is not None:
        folder.stopped_at = time.time()
    if environment.host:
        # The run is over and Locust is about to write report.html with the host in it: never its credentials.
        # (The web UI shows the host without them anyway: a new test started there needs the URL typed again.)
        environment.host = shown_url(environment.host)


def _on_quitting(environment: Any, **_kwargs: Any) -> None:
    folder = current(environment)
    if folder is None or folder.written:  # the web UI's last test wrote its own folder when it stopped
        return
    if folder.stopped_at is None and folder.started_at is not None:
        folder.stopped_at = time.time()
    folder.write()


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)
