"""``--cloudwatch``: after a run against AWS, the target's own metrics for the test window, beside ours.

API Gateway (requests, 4xx, 5xx, latency and integration latency) and Lambda (invocations, errors,
throttles, duration, peak concurrency) go into summary.json's ``cloudwatch`` section, next to the client's
own request count and latencies. The API comes from --cloudwatch-api or from an execute-api --host.
CloudWatch publishes these metrics about a minute late, so the fetch waits --cloudwatch-wait seconds after
the test; a failed fetch is a warning and an ``error`` in the section, never a failed run.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import gevent
from locust import Events
from locust.runners import WorkerRunner

from aws_setup.cloudwatch_metrics import Target, api_from_host, fetch, find_api, queries
from core.book_measure import total_figures
from core.settings import Settings, setting
from plugins.metrics import book_keeper
from plugins.output import run_folder
from plugins.setup.preflight import fail

logger = logging.getLogger("chatswarm")


@dataclass(frozen=True)
class CloudWatchSettings(Settings):
    """Whether and how to add the target's CloudWatch metrics to the report."""

    cloudwatch: bool = setting(False, "Add the target's CloudWatch metrics")
    cloudwatch_api: str = setting("", "API Gateway id or name (default: from an execute-api host)")
    cloudwatch_stage: str = setting("", "API stage (default: from the host, or its only stage)")
    cloudwatch_lambda: str = setting("", "Lambda function names, comma separated")
    cloudwatch_wait: float = setting(60.0, "Seconds to wait for CloudWatch after a test")
    cloudwatch_percentiles: str = setting("p95,p99", "Latency percentiles to fetch (empty = none)")


def _register(parser: argparse.ArgumentParser, **_kwargs: Any) -> None:
    CloudWatchSettings.add_arguments(parser)


def target_settings(options: Any, host: str) -> tuple[str, str, str, list[str]]:
    """(API id or name, stage, region, Lambda functions) from the options and the host."""
    settings = CloudWatchSettings.read(options)
    api, stage = settings.cloudwatch_api, settings.cloudwatch_stage
    region = os.environ.get("AWS_REGION", "")
    parsed = api_from_host(host)
    if parsed is not None:
        api, stage, region = api or parsed[0], stage or parsed[2], parsed[1]
    functions = [name.strip() for name in settings.cloudwatch_lambda.split(",") if name.strip()]
    return api, stage, region, functions


def collect(options: Any, host: str, started: float, stopped: float) -> dict[str, Any]:
    """Fetch the figures (blocking network calls; raises LookupError or a botocore error)."""
    import boto3  # only runs that ask for CloudWatch pay for importing it

    api_key, stage, region, functions = target_settings(options, host)
    aws = boto3.Session(region_name=region or None)
    target = Target(find_api(aws, api_key, stage) if api_key else None, functions)
    percentiles = [p.strip() for p in CloudWatchSettings.read(options).cloudwatch_percentiles.split(",") if p.strip()]
    figures = fetch(aws.client("cloudwatch"), queries(target, percentiles), started, stopped)
    if target.api is not None:
        figures.setdefault("api_gateway", {}).update({k: target.api[k] for k in ("type", "name", "id", "stage")})
    figures["region"] = aws.region_name
    return figures


def cloudwatch_section(environment: Any, duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``cloudwatch`` section, or None without --cloudwatch."""
    options = environment.parsed_options
    folder = run_folder.current(environment)
    settings = CloudWatchSettings.read(options)
    if not settings.cloudwatch or folder is None or folder.started_at is None:
        return None
    stopped = folder.stopped_at or time.time()
    delay = stopped + settings.cloudwatch_wait - time.time()
    if delay > 0:
        logger.info("Waiting %.0f s for CloudWatch to publish the test's metrics (--cloudwatch-wait)", delay)
        gevent.sleep(delay)
    from botocore.exceptions import BotoCoreError, ClientError

    from aws_setup.common import explain

    try:
        figures = collect(options, environment.host or "", folder.started_at, stopped)
    except (LookupError, BotoCoreError, ClientError) as error:  # a report extra must not fail the run
        message = explain(error)
        logger.warning("CloudWatch metrics not added: %s", message)
        return {"error": message}
    figures["client"] = total_figures(book_keeper.keeper(environment).book, duration_s)  # exchanges, as summary
    api = figures.get("api_gateway", {})
    if api:
        logger.info(
            "CloudWatch: API Gateway counted %s requests (%s 4xx, %s 5xx); the client sent %s",
            api.get("requests"), api.get("4xx"), api.get("5xx"), figures["client"]["count"],
        )  # fmt: skip
    return figures


def _on_init(environment: Any, runner: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or isinstance(runner, WorkerRunner) or not CloudWatchSettings.read(options).cloudwatch:
        return
    api, _, _, functions = target_settings(options, environment.host or "")
    if not api and not functions:
        fail("--cloudwatch needs --cloudwatch-api (or an execute-api --host) or --cloudwatch-lambda")


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init_command_line_parser.add_listener(_register)
    events.init.add_listener(_on_init)
    run_folder.add_section("cloudwatch", cloudwatch_section)
