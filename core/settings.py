"""Settings declared once: a module describes its options as one frozen dataclass, and both Locust's
command-line options and the values read back at run time are made from it.

    @dataclass(frozen=True)
    class HealthSettings(Settings):
        health_path: str = setting("/healthcheck", "Health endpoint checked by HealthCheckUser")
        docs_path: str = setting("/docs", "Docs page checked by HealthCheckUser (empty = skip)")

        def check(self) -> None:  # optional: raise InputError naming the option
            require_path(self.health_path, "--health-path")

    HealthSettings.add_arguments(parser)                       # at init_command_line_parser
    settings = HealthSettings.read(environment.parsed_options)  # converted, checked, defaults filled

A field's name is the option's (``health_path`` → ``--health-path``, ``LOCUST_HEALTH_PATH``, config key
``health-path``); its default gives the type (a bool is a switch, a tuple a repeatable option). Options
never registered (unit tests, a plain Environment) read as their defaults, so no default is written twice.
Values a module makes of its options (a parsed range, a loaded file) are ``functools.cached_property``s of
its settings class.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Self

from core.errors import InputError
from core.options import add_option, group_of


def setting(
    default: Any,
    help: str,
    *,
    flag: str = "",
    choices: tuple[str, ...] | None = None,
    secret: bool = False,
    web_ui: bool = False,
) -> Any:
    """One option: its default, its help line, and how it is offered.

    ``flag`` overrides the option name made from the field's name; ``choices`` limits the values;
    ``secret`` keeps the value out of the web UI (and marks it for redaction); ``web_ui=True`` offers it in the
    web UI's form (a main option: the target's, a user kind's or a shape's; the form shows those of the picked
    users and shape, plugins/web/form.py); every option is set on the command line, in config files and as
    a LOCUST_* variable. Values richer than str, int, float, bool and a
    tuple of str (a repeatable option) are made from these by the module, e.g. in a property.
    """
    meta = {"help": help, "flag": flag, "choices": choices, "secret": secret, "web_ui": web_ui}
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True)
class Settings:
    """Base of every module's settings; subclasses are frozen dataclasses whose fields use ``setting``."""

    def check(self) -> None:
        """Raise InputError for a bad value; subclasses override to check their own rules."""

    @classmethod
    def flag(cls, name: str) -> str:
        """The command-line flag of one field: ``chat_path`` → ``--chat-path``."""
        return _flag(next(item for item in fields(cls) if item.name == name))

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Register every field as a Locust option (with its LOCUST_* variable and config key)."""
        for item in fields(cls):
            if not item.init:
                continue
            meta = item.metadata
            kwargs: dict[str, Any] = {"default": item.default, "help": meta["help"]}
            if isinstance(item.default, bool):
                kwargs["action"] = "store_true"
            elif isinstance(item.default, tuple):
                kwargs.update(action="append", default=[])
            else:
                kwargs["type"] = type(item.default)
            if meta["choices"]:
                kwargs["choices"] = meta["choices"]
            if meta["secret"]:
                kwargs["is_secret"] = True
            if not meta["web_ui"]:
                kwargs["include_in_web_ui"] = False
            add_option(parser, _flag(item), group=group_of(cls.__module__), **kwargs)

    @classmethod
    def read(cls, options: Any) -> Self:
        """The values in ``options`` (Locust's parsed_options; None for all defaults), converted and checked.

        Equal values give the same (frozen) object: every user of a run reads its options when it starts, and
        10,000 idle participants must not hold 10,000 copies of them and of what their properties made.
        """
        values = {item.name: _value(item, getattr(options, _dest(item), None)) for item in fields(cls) if item.init}
        key = (cls, *values.values())
        shared = _read_cache.get(key)
        if shared is None:
            shared = cls(**values)
            shared.check()
            if len(_read_cache) >= READ_CACHE_SIZE:
                _read_cache.clear()
            _read_cache[key] = shared
        return shared


READ_CACHE_SIZE = 512
"""Distinct (class, values) pairs remembered by ``Settings.read`` (a run has a few dozen)."""

_read_cache: dict[tuple[Any, ...], Any] = {}


def _flag(item: Any) -> str:
    return item.metadata.get("flag") or "--" + item.name.replace("_", "-")


def _dest(item: Any) -> str:
    """Where argparse keeps the field's value: the flag's name with _ (the field's name unless ``flag`` is given)."""
    return _flag(item).lstrip("-").replace("-", "_")


def _value(item: Any, raw: Any) -> Any:
    """One field's value from its raw option (None: never registered), in the default's type."""
    default = item.default
    if default is MISSING:
        raise TypeError(f"setting {item.name} has no default")
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, tuple):
        return tuple(raw) if isinstance(raw, (list, tuple)) else (raw,)
    try:
        value = raw if type(raw) is type(default) else type(default)(raw)
    except (TypeError, ValueError):
        raise InputError(f"{_flag(item)}: {raw!r} is not a valid {type(default).__name__}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{_flag(item)}: {raw!r} is not a finite number")
    choices = item.metadata.get("choices")
    if choices and value not in choices:
        raise InputError(f"{_flag(item)}: {value!r} is not one of {', '.join(choices)}")
    return value
