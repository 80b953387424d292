"""Helpers for Chatswarm options: registering one on Locust's parser (core/settings.py does it for every
declared setting) and checking values.

Every knob is a Locust custom argument, so it works on the command line, in a ``--config`` file (key =
long option name without ``--``), as a ``LOCUST_<NAME>`` environment variable, and in the web UI. Values
stay plain strings and numbers in ``parsed_options`` (the web UI rewrites them by type); modules turn
them into richer values with the parse functions here when they start.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from core.errors import InputError

SECRET_OPTIONS: set[str] = set()
"""Where Locust's parsed options keep the values of secret options (``is_secret=True``): outputs mask them."""

GROUPS = (
    ("users.common.pacing", "Load shapes"),
    ("users.common", "Target, API and every user"),
    ("users.auth.cognito", "AWS"),
    ("users.auth", "Target, API and every user"),
    ("core.tls", "Target, API and every user"),
    ("users.http", "REST chat and health users"),
    ("users.llm", "Streaming LLM users"),
    ("users.ws", "WebSocket chat users"),
    ("users.plenary", "Group chat (plenary) users"),
    ("users.audio", "Voice call users"),
    ("shapes", "Load shapes"),
    ("plugins.metrics.cloudwatch", "AWS"),
    ("", "SLOs, reports and the run"),
)
"""Which group of ``--chatswarm-help`` a module's options belong to: the first module prefix that matches."""

GROUP_ORDER = (
    "Target, API and every user",
    "REST chat and health users",
    "Streaming LLM users",
    "WebSocket chat users",
    "Group chat (plenary) users",
    "Voice call users",
    "Load shapes",
    "SLOs, reports and the run",
    "AWS",
)

OPTION_GROUPS: dict[str, list[argparse.Action]] = {}
"""Chatswarm's options by group, as registered (what ``chatswarm_help`` lists)."""

GROUP_OF_OPTION: dict[str, str] = {}
"""Each Chatswarm option's group by its dest (``chat_path`` → "REST chat and health users"): the web UI's form."""


def env_var_for(flag: str) -> str:
    """The LOCUST_* environment variable that sets an option: ``--think-time`` → ``LOCUST_THINK_TIME``."""
    return "LOCUST_" + flag.lstrip("-").replace("-", "_").upper()


def group_of(module: str) -> str:
    """The help group of the options declared in ``module`` (e.g. ``users.http.rest_chat``)."""
    return next(title for prefix, title in GROUPS if module == prefix or module.startswith(prefix))


def add_option(parser: argparse.ArgumentParser, flag: str, group: str = "", **kwargs: Any) -> None:
    """Add one option with its LOCUST_* environment variable; keyword arguments are argparse's and Locust's.

    A secret (``is_secret=True``) is left out of the web UI altogether: Locust's masked field still carries
    the value in the page's source, so secrets come from the command line, the environment or .env only.
    """
    kwargs.setdefault("env_var", env_var_for(flag))
    if kwargs.get("is_secret"):
        kwargs["include_in_web_ui"] = False
        SECRET_OPTIONS.add(kwargs.get("dest") or flag.lstrip("-").replace("-", "_"))
    action = parser.add_argument(flag, **kwargs)
    if group and isinstance(action, argparse.Action):
        listed = OPTION_GROUPS.setdefault(group, [])
        if all(known.option_strings != action.option_strings for known in listed):
            listed.append(action)
        GROUP_OF_OPTION.setdefault(action.dest, group)


def chatswarm_help(prog: str = "locust -f locustfile.py") -> str:
    """Every Chatswarm option, in its group (in GROUPS' order), formatted as argparse formats --help."""
    formatter = argparse.ArgumentDefaultsHelpFormatter(prog, max_help_position=40, width=110)
    formatter.add_text(
        f"Chatswarm's options (Locust's own: {prog} --help). Each also works as a LOCUST_<NAME> variable and as "
        "a key of a --config file."
    )
    for title in GROUP_ORDER:
        actions = OPTION_GROUPS.get(title)
        if actions:
            formatter.start_section(title)
            formatter.add_arguments(sorted(actions, key=lambda action: action.option_strings[0]))
            formatter.end_section()
    return formatter.format_help()


def parse_seconds_range(text: str | float, flag: str) -> tuple[float, float]:
    """Parse a duration in seconds, fixed (``2``) or a range (``1-3``), into (low, high)."""
    raw = str(text).strip()
    low_text, sep, high_text = raw.partition("-")
    try:
        low = float(low_text)
        high = float(high_text) if sep else low
    except ValueError:
        raise InputError(f"{flag}: {raw!r} is not a number of seconds or a range like 1-3") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InputError(f"{flag}: {raw!r} is not a finite number of seconds")
    if not 0 <= low <= high:
        raise InputError(f"{flag}: {raw!r} must be a non-negative number or a range LOW-HIGH with LOW <= HIGH")
    return low, high


def require_path(value: str, flag: str, allow_empty: bool = False, allow_url: bool = False) -> str:
    """Check an endpoint option is a path on the host (``/api/chat``) or, when allowed, a full http(s) URL."""
    text = str(value).strip()
    if not text and allow_empty:
        return text
    if not text.startswith("/") and not (allow_url and text.startswith(("http://", "https://"))):
        raise InputError(f"{flag}: {text!r} is not a path on the host; start it with /, e.g. /api/chat")
    return text


def require_positive(value: float, flag: str, allow_zero: bool = False) -> float:
    """Check a number option is positive (or zero when allowed), naming the option when not."""
    if value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{flag}: must be {'zero or more' if allow_zero else 'greater than zero'}, got {value}")
    return value
