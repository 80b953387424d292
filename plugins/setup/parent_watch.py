"""A Locust started by scripts/run_tests.py stops (and writes its report) when run_tests is gone.

run_tests starts Locust and its local workers in process groups of their own, so that a Ctrl-C reaches
them once, through run_tests. If run_tests itself dies without passing a signal on (killed, its terminal
closed), nothing would stop them before their run time ends: so each watches its parent, named in
``CHATSWARM_PARENT_PID``, and sends itself SIGTERM when that process is no longer its parent.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import gevent
from locust import Events

from core.env_files import PARENT_VARIABLE

logger = logging.getLogger("chatswarm")

CHECK_EVERY_S = 1.0


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        gevent.sleep(CHECK_EVERY_S)
    logger.warning("scripts/run_tests.py (pid %s) has gone: stopping this Locust process", parent)
    os.kill(os.getpid(), signal.SIGTERM)


def _on_init(**_kwargs: Any) -> None:
    parent = os.environ.get(PARENT_VARIABLE, "")
    if parent.isdigit():
        gevent.spawn(_watch, int(parent))


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
