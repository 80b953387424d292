"""The config-file check knows every setting name without reading Locust's private parser state at run time."""

from __future__ import annotations

from pathlib import Path

import pytest
from locust.argument_parser import get_parser

from core.errors import InputError
from plugins.setup.config_files import LOCUST_KEYS_NAMED_APART, check_config_files, known_keys


def test_the_table_of_locust_keys_named_apart_matches_locusts_parser() -> None:
    """Every Locust config key whose value lands under another name is in the table, and nothing else is
    (read here from the parser's private list of actions; the plugin itself never reads it)."""
    parser = get_parser()
    apart = {}
    for action in parser._actions:
        for key in parser.get_possible_config_keys(action):
            if not key.startswith("-") and key.replace("-", "_") != action.dest:
                apart[key] = action.dest
    assert apart == LOCUST_KEYS_NAMED_APART


def test_every_option_of_locust_and_chatswarm_is_a_known_key() -> None:
    parser = get_parser()  # locustfile.py is not loaded here: Locust's own options only
    expected = {
        key for action in parser._actions for key in parser.get_possible_config_keys(action) if not key.startswith("-")
    }
    expected -= {"help", "version", "chatswarm-help"}  # actions, not settings: a config file has no use for them
    assert expected <= known_keys(parser), sorted(expected - known_keys(parser))


def test_a_misspelt_setting_is_named_with_the_closest_real_one(tmp_path: Path) -> None:
    config = tmp_path / "run.conf"
    config.write_text("users = 5\nspawn-rate = 2\nrun-tim = 10s\n")
    with pytest.raises(InputError, match=r"unknown setting 'run-tim'; did you mean run-time\?"):
        check_config_files(get_parser(), [str(config)])
    config.write_text("users = 5\nspawn-rate = 2\nrun-time = 10s\nhtml = x.html\n")
    check_config_files(get_parser(), [str(config)])  # all known: no error
