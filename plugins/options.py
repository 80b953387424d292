"""Registers every Chatswarm option on Locust's parser and loads .env before Locust reads its settings.

Loading .env at import (before Locust parses its options) lets .env hold LOCUST_* settings as well as the
target's URL and secrets.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from dotenv import load_dotenv
from locust import events

from plugins.paths import REPO_ROOT
from users import chat_base, health_check, rest_chat
from users.options import add_option

ENV_FILE = os.environ.get("CHATSWARM_ENV_FILE") or str(REPO_ROOT / ".env")
"""The .env file read at start; CHATSWARM_ENV_FILE names another (tests point it at /dev/null)."""

load_dotenv(ENV_FILE, override=False)

ARGUMENT_PROVIDERS = (chat_base.add_chat_arguments, rest_chat.add_arguments, health_check.add_arguments)
"""Functions that add one part's options; each part owns its options."""


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
        default="",
        help="User classes to run with optional weights, e.g. 'RestChatUser:3 HealthCheckUser:1' (default: all)",
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
        "--skip-host-check",
        action="store_true",
        default=False,
        help="Do not check that the target answers before the test starts",
    )


@events.init_command_line_parser.add_listener
def _register(parser: argparse.ArgumentParser, **_kwargs: Any) -> None:
    add_run_arguments(parser)
    for add_arguments in ARGUMENT_PROVIDERS:
        add_arguments(parser)
