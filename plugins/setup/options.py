"""Registers every Chatswarm option on Locust's parser and loads .env before Locust reads its settings.

Loading .env at import (before Locust parses its options) lets .env hold LOCUST_* settings as well as the
target's URL and secrets.
"""

from __future__ import annotations

import argparse
import difflib
import glob
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import configargparse
from locust import Events, User
from locust.argument_parser import DEFAULT_CONFIG_FILES, LocustConfigParser

from core.env_files import load_env_files, profile_from_args
from core.errors import InputError
from core.options import add_option
from core.slo import SLO, parse_slos
from core.tls import ConnectionSettings
from plugins.metrics import resource_monitor
from shapes import options as shape_options


def fail(message: str) -> NoReturn:
    """End the process with one line naming the bad input, and exit code 2."""
    sys.stderr.write(f"chatswarm: error: {message}\n")
    sys.stderr.flush()
    sys.exit(2)


try:  # before Locust parses its options, so .env can hold LOCUST_* settings too
    ENV_FILES = load_env_files(profile_from_args(sys.argv[1:]))
except InputError as error:
    fail(str(error))

RUN_OPTION_OWNERS = (shape_options, resource_monitor)
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


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options about the run itself rather than about one kind of user."""
    add_option(parser, "--test-type", default="custom", help="Name of the test type, used for the report folder")
    add_option(parser, "--report-dir", default="", help="Folder for this run's reports (default reports/<type>-<time>)")
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
        "--skip-report-page",
        action="store_true",
        default=False,
        include_in_web_ui=False,
        help="Do not build index.html when the run ends (pandas and matplotlib take 1-2 s of CPU); "
        "scripts/report.py RUN_FOLDER builds it later",
    )
    add_option(
        parser,
        "--skip-host-check",
        action="store_true",
        default=False,
        help="Do not check that the target answers before the test starts",
    )
    ConnectionSettings.add_arguments(parser)


def configured_slos(options: Any) -> list[SLO]:
    """The --slo thresholds of a run, parsed (raises InputError for a bad expression)."""
    return parse_slos(getattr(options, "slo", None) or [])


TEST_TYPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
"""What a --test-type may be: it names the default run folder, so no slashes, dots or spaces."""


def check_run_options(options: Any) -> None:
    """Raise InputError for a bad run option: the test type, the users, the user mix."""
    test_type = str(getattr(options, "test_type", "custom"))
    if not TEST_TYPE_NAME.fullmatch(test_type):
        raise InputError(f"--test-type: {test_type!r} is not a name of letters, digits, - and _ (e.g. load)")
    users = getattr(options, "num_users", None)
    if users is not None and users < 0:
        raise InputError(f"--users (-u): must be 0 or more, got {users}")
    picked = getattr(options, "user_classes", None) or getattr(options, "class_picker", False)
    if not str(getattr(options, "user_mix", "x")).strip() and not picked:
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


def config_files(argv: list[str]) -> list[str]:
    """The config files Locust reads for this command line: its default files that exist, then each --config."""
    files = [found for name in DEFAULT_CONFIG_FILES for found in glob.glob(os.path.expanduser(name))]
    reader = argparse.ArgumentParser(add_help=False)
    reader.add_argument("--config", action="append", default=[])
    known, _ = reader.parse_known_args(argv)
    return files + known.config


def check_config_files(parser: configargparse.ArgumentParser, files: list[str]) -> None:
    """Raise InputError for a config file that is missing, malformed or sets an option that does not exist.

    Locust would stop with a traceback-like error or take a misspelt setting for a user class name instead.
    """
    known = {key for action in parser._actions for key in parser.get_possible_config_keys(action)}
    for name in files:
        try:
            with open(name, encoding="utf-8") as stream:
                settings = LocustConfigParser().parse(stream)
        except OSError as error:
            raise InputError(f"--config {name}: cannot read it ({error.strerror or error})") from None
        except (configargparse.ConfigFileParserException, UnicodeDecodeError) as error:
            raise InputError(f"--config {name}: malformed ({str(error).splitlines()[0]})") from None
        for key in settings:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(k for k in known if not k.startswith("-")), n=1)
                hint = f"; did you mean {close[0]}?" if close else "; see locust -f locustfile.py --help"
                raise InputError(f"--config {name}: unknown setting {key!r}{hint}")


_config_checked = False


def _register(parser: argparse.ArgumentParser, **_kwargs: Any) -> None:
    global _config_checked
    add_run_arguments(parser)
    for owner in option_owners():
        owner.add_arguments(parser)
    if not _config_checked:  # the web UI builds the parser again on every page; the files were checked at start
        _config_checked = True
        _check_config_files_before_parsing(parser)


def _check_config_files_before_parsing(parser: Any) -> None:
    """Check the config files when Locust parses the command line: by then every plugin has added its options."""
    parse_args = parser.parse_args

    def checked_parse_args(*args: Any, **kwargs: Any) -> Any:
        try:
            check_config_files(parser, config_files(sys.argv[1:]))
        except InputError as error:
            fail(str(error))
        return parse_args(*args, **kwargs)

    parser.parse_args = checked_parse_args


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init_command_line_parser.add_listener(_register)
