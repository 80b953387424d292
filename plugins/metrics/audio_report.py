"""Audio call metrics across the whole run: summary.json's ``audio`` section, merged over workers.

AudioStreamUser publishes a CallRecord for each call on the ``audio_call`` event (also for calls the
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

import gc
import logging
from typing import Any

import gevent
from locust import Events
from locust.runners import WorkerRunner

from core.histogram import Histogram
from plugins.output.run_folder import SUMMARY_SECTIONS
from users.audio.audio_metrics import AudioStats
from users.audio.audio_stream import AudioStreamUser  # defines events.audio_call too

logger = logging.getLogger("chatswarm")

MESSAGE_KEY = "chatswarm_audio"
"""Key of the audio figures in a worker's stats report."""

LATENESS_WARNING_MS = 20.0
"""Send lateness p99 above this means the generator cannot keep its calls in real time."""

LATENESS_CHECK_INTERVAL_S = 10.0
"""How often the live check looks at the frames sent since its last look."""

stats = AudioStats()
"""This process's figures: the run's totals on the master or a local runner, since the last report on a worker."""

_window = Histogram()
"""Send lateness since the last live check (master or local runner)."""

_checker: gevent.Greenlet | None = None


def behind_warning(p99_ms: float, max_ms: float, when: str) -> str:
    """The loud line that says the load generator fell behind real time."""
    return (
        f"AUDIO GENERATOR BEHIND REAL TIME {when}: frames left up to {max_ms:.0f} ms late "
        f"(send lateness p99 {p99_ms:.1f} ms > {LATENESS_WARNING_MS:g} ms). TTFA and every other audio timing "
        "is NOT trustworthy: fewer calls per process, or more with --processes N / more workers."
    )


def audio_section(_environment: Any, duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``audio`` section, when any call was placed."""
    if not stats.counts["calls"]:
        return None
    section = stats.summary(duration_s)
    p99 = section["send_lateness_ms"]["p99"]
    behind = p99 is not None and p99 > LATENESS_WARNING_MS
    section["lateness_warning_ms"] = LATENESS_WARNING_MS
    section["generator_behind_real_time"] = behind
    if behind:
        logger.warning(behind_warning(p99, stats.max_lateness_ms, "during this run"))
    return section


SUMMARY_SECTIONS["audio"] = audio_section


def _on_call(record: Any, **_kwargs: Any) -> None:
    stats.add(record)
    _window.merge(record.lateness.counts)


def _send(data: dict[str, Any], **_kwargs: Any) -> None:
    global stats, _window
    if stats.counts["calls"]:
        data[MESSAGE_KEY] = stats.to_message()
        stats, _window = AudioStats(), Histogram()


def _receive(data: dict[str, Any], **_kwargs: Any) -> None:
    if MESSAGE_KEY in data:
        message = data[MESSAGE_KEY]
        stats.merge_message(message)
        _window.merge(message["histograms"]["send_lateness_ms"])


def check_lateness() -> None:
    """Warn when the frames sent since the last check were late; then start a new window."""
    global _window
    window, _window = _window, Histogram()
    p99 = window.percentile(99)
    if p99 is not None and p99 > LATENESS_WARNING_MS:
        logger.warning(behind_warning(p99, max(window.counts) / 1000, "right now"))


def _check_forever() -> None:
    while True:
        gevent.sleep(LATENESS_CHECK_INTERVAL_S)
        check_lateness()


FREEZE_HEAP_AT_START = True
"""Move everything alive at test start out of the garbage collector's reach when audio callers run.

A full collection otherwise walks Locust's whole heap (~170,000 objects) and stops every call for tens
of milliseconds; frozen, it only walks what the test itself made. Locust does the same before forking
with --processes."""


def _calls_audio(environment: Any) -> bool:
    return any(issubclass(user, AudioStreamUser) for user in environment.user_classes or ())


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    global stats, _window, _checker
    if FREEZE_HEAP_AT_START and _calls_audio(environment):
        gc.collect()
        gc.freeze()
    if isinstance(environment.runner, WorkerRunner):
        return
    stats, _window = AudioStats(), Histogram()
    if _checker is not None:
        _checker.kill(block=False)
    _checker = gevent.spawn(_check_forever)


def _on_test_stop(**_kwargs: Any) -> None:
    global _checker
    if _checker is not None:
        _checker.kill(block=False)
        _checker = None


def _on_reset(**_kwargs: Any) -> None:
    global stats, _window
    stats, _window = AudioStats(), Histogram()


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.audio_call.add_listener(_on_call)
    events.report_to_master.add_listener(_send)
    events.worker_report.add_listener(_receive)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.reset_stats.add_listener(_on_reset)
