"""Checks the config files before Locust parses them fully: a malformed, binary or misspelt one ends the run in one
line (exit 2) instead of a traceback, or a misspelt setting taken for a user class name.

Registered last (locustfile.py's PLUGINS), so every plugin has added its options when it looks. One case is out of
its reach: Locust reads the config files once before it imports locustfile.py (to find -f), and a non-UTF-8
``key = value`` file ends there in Locust's own traceback, before any code of ours runs (Locust's only earlier hook
is importing a package named locust_plugins, which belongs to another project). scripts/run_tests.py checks the
config files it passes before it starts Locust.
"""

from __future__ import annotations

import argparse
import difflib
import glob
import io
import os
import sys
from typing import Any

import configargparse
from locust import Events
from locust.argument_parser import DEFAULT_CONFIG_FILES, LocustConfigParser

from core.errors import InputError
from core.input_files import MAX_CONFIG_FILE_BYTES, read_text_file
from plugins.setup.options import fail

LOCUST_KEYS_NAMED_APART = {
    "users": "num_users",
    "list": "list_commands",
    "csv": "csv_prefix",
    "csv-full-history": "stats_history_enabled",
    "html": "html_file",
}
"""Locust's config keys whose value lands under another name (tests/plugins/test_config_files.py checks this table
against Locust's parser, so an upgrade that changes it fails the suite, not a user's run)."""


def config_files(argv: list[str]) -> list[str]:
    """The config files Locust reads for this command line: its default files that exist, then each --config."""
    files = [found for name in DEFAULT_CONFIG_FILES for found in glob.glob(os.path.expanduser(name))]
    reader = argparse.ArgumentParser(add_help=False)
    reader.add_argument("--config", action="append", default=[])
    known, _ = reader.parse_known_args(argv)
    return files + known.config


def known_keys(parser: configargparse.ArgumentParser) -> set[str]:
    """Every setting name a config file may use: each option's name, with - or _ (from a dry parse that reads
    no file and no environment)."""
    names, _ = parser.parse_known_args(args=[], config_file_contents="", env_vars={})
    keys = {name.replace("_", "-") for name in vars(names)} | set(vars(names))
    return keys | {key for key, name in LOCUST_KEYS_NAMED_APART.items() if name in keys}


def check_config_files(parser: configargparse.ArgumentParser, files: list[str]) -> None:
    """Raise InputError for a config file that is missing, malformed or sets an option that does not exist."""
    known = known_keys(parser)
    for name in files:
        stream = io.StringIO(read_text_file(name, "--config", MAX_CONFIG_FILE_BYTES))
        stream.name = name  # Locust's parser tells TOML from key = value by the name
        try:
            settings = LocustConfigParser().parse(stream)
        except configargparse.ConfigFileParserException as error:
            raise InputError(f"--config {name}: malformed ({str(error).splitlines()[0]})") from None
        for key in settings:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(k for k in known if "_" not in k), n=1)
                hint = f"; did you mean {close[0]}?" if close else "; see locust -f locustfile.py --help"
                raise InputError(f"--config {name}: unknown setting {key!r}{hint}")


class _Checked:
    done = False
    """The web UI builds the parser again on every page; the files were checked at start."""


def _check(parser: Any, **_kwargs: Any) -> None:
    if _Checked.done:
        return
    _Checked.done = True
    try:
        check_config_files(parser, config_files(sys.argv[1:]))
    except InputError as error:
        fail(str(error))


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, last)."""
    events.init_command_line_parser.add_listener(_check)
