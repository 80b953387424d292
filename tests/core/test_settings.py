"""core/settings.py: one declaration makes the options and reads them back, defaults written once."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from core.errors import InputError
from core.settings import Settings, setting


@dataclass(frozen=True)
class ToySettings(Settings):
    chat_path: str = setting("/api/chat", "Path of the chat endpoint")
    turns: int = setting(5, "Turns per conversation")
    think: float = setting(1.5, "Seconds between turns")
    verbose: bool = setting(False, "Say more")
    header: tuple[str, ...] = setting((), "A header, repeatable")
    kind: str = setting("sse", "Wire format", choices=("sse", "ndjson"))
    api_key: str = setting("", "The key", secret=True)
    old_name: str = setting("x", "Spelt apart", flag="--new-name")

    def check(self) -> None:
        if self.turns < 1:
            raise InputError("--turns: must be 1 or more")


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    ToySettings.add_arguments(_Tolerant(parser))
    return parser.parse_args(argv)


class _Tolerant:
    """A stand-in for Locust's parser: plain argparse does not know env_var, include_in_web_ui or is_secret."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self.added: dict[str, dict] = {}

    def add_argument(self, flag: str, **kwargs: object) -> None:
        self.added[flag] = dict(kwargs)
        for locust_only in ("env_var", "include_in_web_ui", "is_secret"):
            kwargs.pop(locust_only, None)
        self.parser.add_argument(flag, **kwargs)


def test_defaults_come_from_the_declaration_when_nothing_was_registered() -> None:
    assert ToySettings.read(None) == ToySettings()
    assert ToySettings.read(argparse.Namespace()).turns == 5


def test_the_command_line_sets_each_kind_of_option() -> None:
    argv = ["--chat-path", "/v2/ask", "--turns", "3", "--think", "0.5", "--verbose", "--header", "A: 1"]
    argv += ["--header", "B: 2", "--kind", "ndjson", "--new-name", "y"]
    settings = ToySettings.read(parsed(*argv))
    assert (settings.chat_path, settings.turns, settings.think, settings.verbose) == ("/v2/ask", 3, 0.5, True)
    assert settings.header == ("A: 1", "B: 2") and settings.kind == "ndjson" and settings.old_name == "y"


def test_values_as_text_are_converted_and_bad_ones_named() -> None:
    """The web UI and hand-made options hand over text."""
    text = argparse.Namespace(turns="7", think="2", verbose="true", kind="sse")
    settings = ToySettings.read(text)
    assert (settings.turns, settings.think, settings.verbose) == (7, 2.0, True)
    with pytest.raises(InputError, match=r"^--turns: 'many' is not a valid int$"):
        ToySettings.read(argparse.Namespace(turns="many"))
    with pytest.raises(InputError, match=r"^--kind: 'xml' is not one of sse, ndjson$"):
        ToySettings.read(argparse.Namespace(kind="xml"))
    with pytest.raises(InputError, match=r"^--turns: must be 1 or more$"):
        ToySettings.read(argparse.Namespace(turns=0))


def test_registration_names_the_locust_variable_and_keeps_secrets_out_of_the_web_ui_and_repr() -> None:
    tolerant = _Tolerant(argparse.ArgumentParser())
    ToySettings.add_arguments(tolerant)
    assert tolerant.added["--chat-path"]["env_var"] == "LOCUST_CHAT_PATH"
    assert (
        tolerant.added["--api-key"]["is_secret"] is True and tolerant.added["--api-key"]["include_in_web_ui"] is False
    )
    assert tolerant.added["--verbose"]["action"] == "store_true" and tolerant.added["--header"]["action"] == "append"
    assert "sk-secret" not in repr(ToySettings(api_key="sk-secret"))


def test_equal_options_give_one_shared_object_and_a_change_a_new_one() -> None:
    # Every user reads its options when it starts: 10,000 participants must share one frozen copy, not hold one each.
    first, again = ToySettings.read(parsed("--turns", "3")), ToySettings.read(parsed("--turns", "3"))
    assert first is again
    changed = ToySettings.read(parsed("--turns", "4"))
    assert changed is not first and (first.turns, changed.turns) == (3, 4)
    with pytest.raises(InputError, match="--turns"):  # a bad value is refused every time, never remembered
        ToySettings.read(parsed("--turns", "0"))
    with pytest.raises(InputError, match="--turns"):
        ToySettings.read(parsed("--turns", "0"))
