"""Registers every Chatswarm option on Locust's parser and loads .env before Locust reads its settings.

Loading .env at import (before Locust parses its options) lets .env hold LOCUST_* settings as well as the
target's URL and secrets.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from locust import Events, User

from core.env_files import load_env_files, profile_from_args
from core.errors import InputError
from core.options import chatswarm_help
from core.settings import Settings, setting
from core.slo import SLO, SloSettings
from core.tls import ConnectionSettings
from plugins.metrics import resource_monitor
from plugins.setup import run_size
from shapes import options as shape_options
from users.common import http_answers


def fail(message: str) -> NoReturn:
    """End the process with one line naming the bad input, and exit code 2."""
    sys.stderr.write(f"chatswarm: error: {message}\n")
    sys.stderr.flush()
    sys.exit(2)


try:  # before Locust parses its options, so .env can hold LOCUST_* settings too
    ENV_FILES = load_env_files(profile_from_args(sys.argv[1:]))
except InputError as error:
    fail(str(error))

RUN_OPTION_OWNERS = (shape_options, resource_monitor, run_size, http_answers)
"""Modules that own options besides the users: each has add_arguments(parser), and may have check_options."""


def option_owners() -> list[ModuleType]:
    """Every module that declares options: the shapes', the monitor's, and the module of every user class loaded.

    A user's module is found through its class (locustfile.py imports it), so a new protocol user needs no
    registration here; a module it relies on (prompts, auth, pacing) is declared by the user module's own
    ``add_arguments``.
    """
    owners = list(RUN_OPTION_OWNERS)
    for user_class in _user_classes(User):
        module = sys.modules.get(user_class.__module__)
        if module is not None and hasattr(module, "add_arguments") and module not in owners:
            owners.append(module)
    return owners


def _user_classes(base: type) -> list[type]:
    found = []
    for subclass in base.__subclasses__():
        found += [subclass, *_user_classes(subclass)]
    return found


TEST_TYPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
"""What a --test-type may be: it names the default run folder, so no slashes, dots or spaces."""


@dataclass(frozen=True)
class RunSettings(Settings):
    """Options about the run itself rather than about one kind of user."""

    test_type: str = setting("custom", "Name of the test type, used for the report folder")
    report_dir: str = setting("", "Folder for this run's reports (default reports/<type>-<time>)")
    user_mix: str = setting(
        "RestChatUser", "User classes to run with optional weights, e.g. 'RestChatUser:3 HealthCheckUser:1'"
    )
    demobot_args: str = setting(
        "",
        "Flags for the built-in demo chatbot when scripts/run_tests.py starts it (e.g. '--slots 8')",
        web_ui=False,
    )
    env: str = setting("", "Credential profile: also load .env.NAME (e.g. dev, staging), on top of .env", web_ui=False)
    skip_report_page: bool = setting(
        False,
        "Do not build index.html when the run ends (pandas and matplotlib take 1-2 s of CPU); "
        "scripts/report.py RUN_FOLDER builds it later",
        web_ui=False,
    )
    skip_host_check: bool = setting(False, "Do not check that the target answers before the test starts")

    def check(self) -> None:
        if not TEST_TYPE_NAME.fullmatch(self.test_type):
            raise InputError(f"--test-type: {self.test_type!r} is not a name of letters, digits, - and _ (e.g. load)")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options about the run itself, and how every client connects."""
    RunSettings.add_arguments(parser)
    SloSettings.add_arguments(parser)
    ConnectionSettings.add_arguments(parser)


def configured_slos(options: Any) -> list[SLO]:
    """The --slo thresholds of a run, parsed (raises InputError for a bad expression)."""
    return SloSettings.read(options).slos


def check_run_options(options: Any) -> None:
    """Raise InputError for a bad run option: the test type, the users, the user mix."""
    run = RunSettings.read(options)
    users = getattr(options, "num_users", None)
    if users is not None and users < 0:
        raise InputError(f"--users (-u): must be 0 or more, got {users}")
    picked = getattr(options, "user_classes", None) or getattr(options, "class_picker", False)
    if not run.user_mix.strip() and not picked:
        raise InputError(
            "--user-mix: empty; name the users to run, e.g. RestChatUser or 'RestChatUser:3 HealthCheckUser'"
        )


def make_report_dir(path: Path) -> None:
    """Create the run folder now (the last check), so a path that cannot be a folder fails in one line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"--report-dir: {path} is a file, not a folder") from None
    except OSError as error:
        raise InputError(f"--report-dir: cannot create {path} ({error.strerror or error})") from None


class ChatswarmHelp(argparse.Action):
    """``--chatswarm-help``: print Chatswarm's options by group, then exit.

    Locust prints ``--help`` before it loads any locustfile (locust issue #2917), so its help can never list a
    plugin's options; this one can, since Locust parses the full command line after loading locustfile.py.
    """

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        print(chatswarm_help())
        parser.exit()


UNKNOWN_WITH_VALUE = re.compile(r"(--[A-Za-z0-9][\w-]*)=\S+")
"""``--flag=value`` in an error about unrecognized arguments: the value may be a secret given to a misspelt flag."""


def mask_unknown_values(report_error: Any) -> Any:
    """``parser.error`` that never echoes the value of an option it does not know (``--api-kye=sk-…``)."""

    def error(message: str) -> Any:
        return report_error(UNKNOWN_WITH_VALUE.sub(r"\1=***", message))

    return error


def _register(parser: argparse.ArgumentParser, **_kwargs: Any) -> None:
    parser.error = mask_unknown_values(parser.error)  # type: ignore[method-assign]
    parser.add_argument(
        "--chatswarm-help", action=ChatswarmHelp, help="List Chatswarm's options by group", include_in_web_ui=False
    )
    add_run_arguments(parser)
    for owner in option_owners():
        owner.add_arguments(parser)


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init_command_line_parser.add_listener(_register)
