"""Audio call metrics across the whole run: summary.json's ``audio`` section, merged over workers.

AudioStreamUser publishes a CallRecord for each call (users/common/records.py) (also for calls the
end of the test cut short, so nothing measured is lost). Every process adds its records to an
AudioStats; workers send theirs to the master with each stats report and start afresh, and the master
merges the histograms, so percentiles cover all samples. The section holds TTFA, connect time,
response audio and real-time factor, mark round trips, send lateness, bytes and frames, calls, and
injected faults apart from real failures.

When frames leave later than they should (send lateness p99 above LATENESS_WARNING_MS), the load
generator itself has fallen behind real time: a loud warning goes to the log while the test runs and
at its end, and the section says ``generator_behind_real_time: true``.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent
from locust import Events
from locust.runners import WorkerRunner

from core.histogram import Histogram
from plugins.metrics.merged import MergedOverWorkers
from plugins.output.run_folder import add_section
from users.audio.audio_metrics import AudioStats, CallRecord
from users.common import records

logger = logging.getLogger("chatswarm")

MESSAGE_KEY = "chatswarm_audio"
"""Key of the audio figures in a worker's stats report."""

LATENESS_WARNING_MS = 20.0
"""Send lateness p99 above this means the generator cannot keep its calls in real time."""

LATENESS_CHECK_INTERVAL_S = 10.0
"""How often the live check looks at the frames sent since its last look."""


def behind_warning(p99_ms: float, max_ms: float, when: str) -> str:
    """The loud line that says the load generator fell behind real time."""
    return (
        f"AUDIO GENERATOR BEHIND REAL TIME {when}: frames left up to {max_ms:.0f} ms late "
        f"(send lateness p99 {p99_ms:.1f} ms > {LATENESS_WARNING_MS:g} ms). TTFA and every other audio timing "
        "is NOT trustworthy: fewer calls per process, or more with --processes N / more workers."
    )


class AudioReport(MergedOverWorkers):
    """This Environment's call figures: the run's totals on the master or a local runner, since the last report
    on a worker; and the send lateness since the last live check."""

    message_key = MESSAGE_KEY

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.stats = AudioStats()
        self.window = Histogram()
        self.checker: gevent.Greenlet | None = None

    def listen(self) -> None:
        events = self.environment.events
        records.subscribe(self.environment, CallRecord, self.add)
        self.listen_for_reports()
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        events.reset_stats.add_listener(self.reset)

    def add(self, record: CallRecord) -> None:
        self.stats.add(record)
        self.window.merge(record.lateness.counts)

    def take_message(self) -> dict[str, Any] | None:
        taken = self.stats
        self.reset()
        return taken.to_message() if taken.counts["calls"] else None

    def merge_message(self, message: dict[str, Any], client_id: str) -> None:
        self.stats.merge_message(message)
        self.window.merge(message["histograms"]["send_lateness_ms"])

    def check_lateness(self) -> None:
        """Warn when the frames sent since the last check were late; then start a new window."""
        window, self.window = self.window, Histogram()
        p99 = window.percentile(99)
        if p99 is not None and p99 > LATENESS_WARNING_MS:
            logger.warning(behind_warning(p99, max(window.counts) / 1000, "right now"))

    def _check_forever(self) -> None:
        while True:
            gevent.sleep(LATENESS_CHECK_INTERVAL_S)
            self.check_lateness()

    def on_test_start(self, **_kwargs: Any) -> None:
        if isinstance(self.environment.runner, WorkerRunner):
            return
        self.reset()
        self.on_test_stop()
        self.checker = gevent.spawn(self._check_forever)

    def on_test_stop(self, **_kwargs: Any) -> None:
        if self.checker is not None:
            self.checker.kill(block=False)
            self.checker = None

    def reset(self, **_kwargs: Any) -> None:
        self.stats, self.window = AudioStats(), Histogram()


def _on_init(environment: Any, **_kwargs: Any) -> None:
    records.state(environment, AudioReport, lambda: AudioReport(environment)).listen()


def audio_section(environment: Any, duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``audio`` section, when any call was placed."""
    report = records.existing(environment, AudioReport)
    if report is None or not report.stats.counts["calls"]:
        return None
    stats = report.stats
    section = stats.summary(duration_s)
    p99 = section["send_lateness_ms"]["p99"]
    behind = p99 is not None and p99 > LATENESS_WARNING_MS
    section["lateness_warning_ms"] = LATENESS_WARNING_MS
    section["generator_behind_real_time"] = behind
    if behind:
        logger.warning(behind_warning(p99, stats.max_lateness_ms, "during this run"))
    return section


def run_values(environment: Any) -> dict[str, float | None]:
    """The audio SLO metrics known for a whole run: ``call_setup`` (calls set up / tried)."""
    report = records.existing(environment, AudioReport)
    return {"call_setup": report.stats.outcomes.setup_success()} if report is not None else {}


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    add_section("audio", audio_section)
