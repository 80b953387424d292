"""Registers every Chatswarm option on Locust's parser and loads .env before Locust reads its settings.

Loading .env at import (before Locust parses its options) lets .env hold LOCUST_* settings as well as the
target's URL and secrets.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from locust import events

from plugins import resource_monitor
from plugins.env_files import load_env_files, profile_from_args
from shapes import options as shape_options
from shapes.slo import SLO, parse_slos
from users import (
    audio_stream,
    bot_targets,
    chat_base,
    health_check,
    pacing,
    plenary,
    rest_chat,
    streaming_chat,
    ws_chat,
)
from users.errors import InputError
from users.options import add_option

try:  # before Locust parses its options, so .env can hold LOCUST_* settings too
    ENV_FILES = load_env_files(profile_from_args(sys.argv[1:]))
except InputError as error:
    sys.stderr.write(f"chatswarm: error: {error}\n")
    sys.exit(2)

OPTION_OWNERS = (
    chat_base,
    rest_chat,
    bot_targets,
    streaming_chat,
    ws_chat,
    plenary,
    audio_stream,
    health_check,
    pacing,
    shape_options,
    resource_monitor,
)
"""Modules that own options: each has add_arguments(parser) and may have check_options(options)."""


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options about the run itself rather than about one kind of user."""
    add_option(parser, "--test-type", default="custom", help="Name of the test type, used for the report folder")
    add_option(
        parser,
        "--report-dir",
        default="",
        help="Folder for this run's reports (default reports/<test-type>-<timestamp>)",
    )
    add_option(
        parser,
        "--user-mix",
        default="RestChatUser",
        help="User classes to run with optional weights, e.g. 'RestChatUser:3 HealthCheckUser:1'",
    )
    add_option(
        parser,
        "--demobot-args",
        default="",
        include_in_web_ui=False,
        help="Flags for the built-in demo chatbot when scripts/run_tests.py starts it (e.g. '--slots 8')",
    )
    add_option(
        parser,
        "--slo",
        action="append",
        default=[],
        include_in_web_ui=False,
        help="Service level objective, repeatable: p95<2500, ttft_p95<800, fail_ratio<1%%, rps>50, p95[chat:simple]<2s",
    )
    add_option(
        parser,
        "--env",
        default="",
        include_in_web_ui=False,
        help="Credential profile: also load .env.NAME (e.g. dev, staging), on top of .env",
    )
    add_option(
        parser,
        "--skip-host-check",
        action="store_true",
        default=False,
        help="Do not check that the target answers before the test starts",
    )


def configured_slos(options: Any) -> list[SLO]:
    """The --slo thresholds of a run, parsed (raises InputError for a bad expression)."""
    return parse_slos(getattr(options, "slo", None) or [])


@events.init_command_line_parser.add_listener
def _register(parser: argparse.ArgumentParser, **_kwargs: Any) -> None:
    add_run_arguments(parser)
    for owner in OPTION_OWNERS:
        owner.add_arguments(parser)
