"""HealthCheckUser: checks that the chatbot's health and documentation endpoints answer (smoke tests)."""

from __future__ import annotations

import argparse
from typing import Any

from locust import FastHttpUser, constant, task

from core.options import add_option, option, require_path
from core.tls import context_factory, insecure_option
from users.common.http_failures import response_failure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register HealthCheckUser's options."""
    add_option(parser, "--health-path", default="/healthcheck", help="Health endpoint checked by HealthCheckUser")
    add_option(parser, "--docs-path", default="/docs", help="Docs page checked by HealthCheckUser (empty = skip)")


def check_options(options: Any) -> None:
    """Raise InputError for a bad HealthCheckUser option."""
    require_path(option(options, "health_path", "/healthcheck"), "--health-path")
    require_path(option(options, "docs_path", "/docs"), "--docs-path", allow_empty=True)


class HealthCheckUser(FastHttpUser):
    """GETs the health endpoint and the docs page every couple of seconds; anything but 2xx is a failure."""

    wait_time = constant(2)
    health_path: str = "/healthcheck"
    """Path of the health endpoint (--health-path)."""

    docs_path: str = "/docs"
    """Path of the documentation page (--docs-path); empty skips it."""

    def __init__(self, environment: Any) -> None:
        # The chat users' --request-timeout bounds health checks too (FastHttpUser's default is 60 s).
        timeout = float(option(environment.parsed_options, "request_timeout", self.network_timeout))
        self.network_timeout = self.connection_timeout = timeout
        self.insecure = insecure_option(environment.parsed_options)  # FastHttpUser's default: True
        self.ssl_context_factory = context_factory(self.insecure)
        super().__init__(environment)
        self.health_path = option(environment.parsed_options, "health_path", self.health_path)
        self.docs_path = option(environment.parsed_options, "docs_path", self.docs_path)

    @task
    def check(self) -> None:
        """Check the health endpoint, then the docs page."""
        for name, path in (("health", self.health_path), ("docs", self.docs_path)):
            if not path:
                continue
            with self.client.get(path, name=name, catch_response=True) as resp:
                failure = response_failure(resp)
                if failure:
                    resp.failure(failure)
                else:
                    resp.success()
