"""The probe before the load: one real exchange per selected user kind, so a wrong path, a refused key or an
answer of another shape ends the start in one line and exit code 2 instead of a run of 100 % failures.

Each user class that offers ``probe(environment) -> str | None`` (users/common/probe.py) makes its exchange with its
own code, counted nowhere. It runs on the master or the lone process, after preflight's checks (registered after
it, so the options are known good) and before the run folder is made, in headless and autostart runs (in the web
UI the host may still change). ``--skip-probe`` skips it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from locust import Events
from locust.runners import WorkerRunner

from core.settings import Settings, setting
from plugins.setup.options import fail


@dataclass(frozen=True)
class ProbeSettings(Settings):
    """Whether to make one exchange per user kind before the load."""

    skip_probe: bool = setting(
        False,
        "Start without the one exchange per user kind that stops a misconfigured run (wrong path, refused key, "
        "missing answer field, another stream format) before the load",
        web_ui=False,
    )


def add_arguments(parser: argparse.ArgumentParser, **_kwargs: Any) -> None:
    """Register --skip-probe."""
    ProbeSettings.add_arguments(parser)


def probe(environment: Any) -> str | None:
    """``UserName: what is wrong`` for the first selected user kind whose probe finds a misconfiguration."""
    for user_class in list(environment.user_classes):
        check = getattr(user_class, "probe", None)
        if check is not None and (problem := check(environment)):
            return f"{user_class.__name__}: {problem}"
    return None


def _on_init(environment: Any, runner: Any = None, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or isinstance(runner or environment.runner, WorkerRunner) or not environment.host:
        return
    if not (options.headless or options.autostart) or ProbeSettings.read(options).skip_probe:
        return
    if problem := probe(environment):
        fail(f"{problem}; fix the options, or --skip-probe to start anyway")


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(_on_init)
