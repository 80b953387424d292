"""HealthCheckUser: checks that the chatbot's health and documentation endpoints answer (smoke tests)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from locust import FastHttpUser, task

from core.options import require_path
from core.settings import Settings, setting
from core.tls import ConnectionSettings, context_factory
from users.common.http_answers import AnswerSettings, bounded_request
from users.common.http_failures import MAX_REDIRECTS
from users.common.in_flight import InFlight
from users.common.probe import judged, run_probe
from users.common.request_headers import request_headers
from users.common.retry_after import RetryAfterWaiter

CHECK_INTERVAL_S = 2.0
"""Seconds between two rounds of checks."""


@dataclass(frozen=True)
class HealthSettings(Settings):
    """HealthCheckUser's options."""

    health_path: str = setting("/healthcheck", "Health endpoint checked by HealthCheckUser", web_ui=True)
    docs_path: str = setting("/docs", "Docs page checked by HealthCheckUser (empty = skip)")

    def check(self) -> None:
        require_path(self.health_path, "--health-path")
        require_path(self.docs_path, "--docs-path", allow_empty=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register HealthCheckUser's options."""
    HealthSettings.add_arguments(parser)


def check_options(options: Any) -> None:
    """Raise InputError for a bad HealthCheckUser option."""
    HealthSettings.read(options)


class HealthCheckUser(FastHttpUser):
    """GETs the health endpoint and the docs page every couple of seconds; anything but 2xx is a failure.

    Each check is bounded like a chat question: --request-timeout from connect to last byte, --max-answer-mb.
    """

    max_redirects = MAX_REDIRECTS

    def __init__(self, environment: Any) -> None:
        connection = ConnectionSettings.read(environment.parsed_options)
        # --request-timeout bounds health checks too (FastHttpUser's default is 60 s).
        self.network_timeout = self.connection_timeout = connection.request_timeout
        self.insecure = connection.insecure  # FastHttpUser's default: True
        self.ssl_context_factory = context_factory(self.insecure)
        self.default_headers = request_headers(environment.parsed_options)  # --header and --api-key
        super().__init__(environment)
        if "authorization" in {name.lower() for name in self.default_headers}:
            self.client.auth_header = None  # as for chat users: an Authorization asked for wins over the URL's
        self.settings = HealthSettings.read(environment.parsed_options)
        self.request_timeout_s = connection.request_timeout
        self.answer_settings = AnswerSettings.read(environment.parsed_options)
        self.retry_after = RetryAfterWaiter(environment, self.answer_settings.honor_retry_after)
        self.in_flight = InFlight("GET", "health")
        """The check in flight: recorded as cut short if the test ends during it."""

    @classmethod
    def probe(cls, environment: Any) -> str | None:
        """One round of checks before the load, counted nowhere (users/common/probe.py): what is misconfigured."""
        return judged(run_probe(cls, environment, cls.check), cls.__name__)

    def on_stop(self) -> None:
        self.in_flight.cut_short(self.environment)

    def wait_time(self) -> float:
        self.in_flight.end()
        self.retry_after.wait()
        return CHECK_INTERVAL_S

    @task
    def check(self) -> None:
        """Check the health endpoint, then the docs page."""
        for name, path in (("health", self.settings.health_path), ("docs", self.settings.docs_path)):
            if not path:
                continue
            timeout_s, limits = self.request_timeout_s, self.answer_settings
            self.in_flight.begin(name)
            with bounded_request(self.client, "GET", path, timeout_s, limits, name=name) as resp:
                self.retry_after.note(resp.status_code, resp.headers)
                failure = resp.failure_name
                if failure:
                    resp.failure(failure)
                else:
                    resp.success()
