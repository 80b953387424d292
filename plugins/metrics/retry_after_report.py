"""Counts the waits users made for a 429's Retry-After (--honor-retry-after): summary.json's ``retry_after``.

Each process counts its users' RetryAfterWait records; workers send their counts with every stats report
and the master adds them up. The section shows whether the option was on, how many waits were made and how
long they took in all, so a run's lower pressure is explained by the target's own requests to slow down.
"""

from __future__ import annotations

from typing import Any

from locust import Events

from plugins.metrics.merged import MergedOverWorkers
from plugins.output.run_folder import add_section
from users.common import records
from users.common.http_answers import AnswerSettings
from users.common.retry_after import RetryAfterWait

MESSAGE_KEY = "chatswarm_retry_after"


class RetryAfterCount(MergedOverWorkers):
    """The waits made on this Environment: all processes' on the master, the next report's on a worker."""

    message_key = MESSAGE_KEY

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.waits = 0
        self.waited_s = 0.0

    def listen(self) -> None:
        records.subscribe(self.environment, RetryAfterWait, self.add)
        self.environment.events.test_start.add_listener(self.on_test_start)
        self.listen_for_reports()

    def on_test_start(self, **_kwargs: Any) -> None:
        self.waits, self.waited_s = 0, 0.0

    def add(self, wait: RetryAfterWait) -> None:
        self.waits += 1
        self.waited_s += wait.seconds

    def take_message(self) -> dict[str, Any] | None:
        if not self.waits:
            return None
        message = {"waits": self.waits, "waited_s": self.waited_s}
        self.waits, self.waited_s = 0, 0.0
        return message

    def merge_message(self, message: dict[str, Any], client_id: str) -> None:
        self.waits += int(message.get("waits", 0))
        self.waited_s += float(message.get("waited_s", 0.0))


def _on_init(environment: Any, **_kwargs: Any) -> None:
    records.state(environment, RetryAfterCount, lambda: RetryAfterCount(environment)).listen()


def retry_after_section(environment: Any, duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``retry_after`` section: when --honor-retry-after was on, or a wait was made."""
    honored = AnswerSettings.read(environment.parsed_options).honor_retry_after
    count = records.existing(environment, RetryAfterCount)
    waits = count.waits if count else 0
    if not honored and not waits:
        return None
    return {"honored": honored, "waits": waits, "waited_s": round(count.waited_s if count else 0.0, 3)}


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    add_section("retry_after", retry_after_section)
