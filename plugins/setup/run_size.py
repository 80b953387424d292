"""How many users a run may ask for: refuse a run that would do nothing (``-u 0``) and more users per process than
a process can run, in one line and exit code 2, before anything starts.

The cap is a fixed number per process with an option to raise it, not a figure derived from this machine's memory:
a process runs all its users on one core, and what gives out first is that core (and Locust's spawner, which holds
it while it spawns), not memory. Measured here: 2,000 idle RestChatUsers spawn in 0.2 s and take 55 MB; 50,000 take
6 s to spawn, during which the process hears neither -t nor SIGTERM, and 570 MB; -u 10000000 grew to 2.5 GB and
never stopped. The spawn rate needs no cap of its own: once the users are bounded, a rate above them only
spawns them all at once. A fixed cap refuses the same command on every machine (CI included); whoever has measured a
machine that does better raises it.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

from core.errors import InputError
from core.settings import Settings, setting
from shapes.base import UserCounts
from shapes.options import selected_shape

MAX_USERS_PER_PROCESS = 5_000
"""Default --max-users-per-process: 5,000 idle users spawned at once here in 0.5 s and took 250 MB, and a -t 3s
run of them ended in 5 s; 10,000 took 435 MB and 6 s."""

CHECKED_ON_WORKERS = False
"""Only the master (or a lone process) knows the run's users and how many processes share them."""


@dataclass(frozen=True)
class RunSizeSettings(Settings):
    """The bound on users per process."""

    max_users_per_process: int = setting(
        MAX_USERS_PER_PROCESS,
        "Most users one Locust process may run; more are refused before the start (add workers or --processes)",
        web_ui=False,
    )

    def check(self) -> None:
        if self.max_users_per_process < 1:
            raise InputError(f"--max-users-per-process: must be 1 or more, got {self.max_users_per_process}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register --max-users-per-process."""
    RunSizeSettings.add_arguments(parser)


def check_options(options: Any) -> None:
    """Raise InputError for a run that would start no users, or more users per process than the cap."""
    cap = RunSizeSettings.read(options).max_users_per_process
    shape = selected_shape(options)
    if shape:
        users, given = UserCounts.read(options).max_users, "--max-users"
    else:
        users, given = getattr(options, "num_users", None), "--users (-u)"
    if users is None:
        return  # Locust's default: one user
    starts_by_itself = getattr(options, "headless", False) or getattr(options, "autostart", False)
    if users == 0 and not shape and starts_by_itself:
        raise InputError(f"{given} 0: the run would start no user and measure nothing; give 1 or more, or a --shape")
    processes = max(1, int(getattr(options, "expect_workers", 1) or 1)) if getattr(options, "master", False) else 1
    per_process = math.ceil(users / processes)
    if per_process > cap:
        spread = f" over {processes} worker processes is {per_process}" if processes > 1 else " all run in one process"
        raise InputError(
            f"{given} {users}:{spread}; one process runs at most {cap} users honestly (--max-users-per-process); "
            "add workers (--processes N) or give fewer users"
        )
