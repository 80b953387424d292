"""Checks before the test starts: the options make sense and the target answers.

A mistake the user can make ends here in one line on stderr and exit code 2, instead of a traceback or
a run full of connection errors.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from locust import Events
from locust.runners import WorkerRunner

from core.errors import InputError
from core.target import check_host
from plugins.setup.options import check_run_options, configured_slos, fail, make_report_dir, option_owners
from plugins.setup.slo_reach import check_reach

__all__ = ["fail", "preflight"]

logger = logging.getLogger("chatswarm")

INSECURE_WARNING = (
    "--insecure: TLS certificates of https/wss targets are NOT verified; whoever sits between here and the "
    "target could read and change the traffic, tokens included"
)


def apply_user_mix(environment: Any, mix: str) -> None:
    """Keep only the user classes named in --user-mix, with their weights (``Name`` or ``Name:weight``)."""
    available = environment.available_user_classes or {cls.__name__: cls for cls in environment.user_classes}
    chosen = []
    for item in mix.replace(",", " ").split():
        name, _, weight_text = item.partition(":")
        if name not in available:
            raise InputError(f"--user-mix: unknown user class {name!r}; available: {', '.join(sorted(available))}")
        user_class = available[name]
        if weight_text:
            if not weight_text.isdigit() or int(weight_text) < 1:
                raise InputError(f"--user-mix: weight of {name} must be a whole number of 1 or more")
            user_class.weight = int(weight_text)
        chosen.append(user_class)
    environment.user_classes[:] = chosen


def preflight(environment: Any) -> None:
    """Check the options and the target; raise InputError for the first problem found."""
    options = environment.parsed_options
    if options is None:
        return
    check_run_options(options)
    if options.user_mix and not options.user_classes:
        apply_user_mix(environment, options.user_mix)
    slos = configured_slos(options)
    worker = isinstance(environment.runner, WorkerRunner)
    for owner in option_owners():
        check = getattr(owner, "check_options", None)
        if check and (not worker or getattr(owner, "CHECKED_ON_WORKERS", True)):
            check(options)
    if worker:
        return  # the master checks the target; workers may sit where it cannot be reached from
    check_reach(environment, slos)
    if options.insecure:
        logger.warning(INSECURE_WARNING)
    if not environment.host and os.environ.get("CHATBOT_URL"):
        environment.host = options.host = os.environ["CHATBOT_URL"]
    if options.headless or options.autostart:  # in the web UI the host can still be typed in
        if not environment.host:
            raise InputError("no target: give --host URL or set CHATBOT_URL (in .env or the environment)")
        if not options.skip_host_check:
            check_host(environment.host, verify_certificate=not options.insecure)
    if options.report_dir:
        make_report_dir(Path(options.report_dir))


def _on_init(environment: Any, **_kwargs: Any) -> None:
    try:
        preflight(environment)
    except InputError as error:
        fail(str(error))


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
