"""Loading .env files: the default one, and a credential profile on top (``--env dev`` → ``.env.dev``).

Free of Locust imports, so command-line scripts load the same files the same way. Real environment
variables always win; a profile's values win over ``.env``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from dotenv import load_dotenv

from core.errors import InputError
from core.paths import REPO_ROOT

PARENT_VARIABLE = "CHATSWARM_PARENT_PID"
"""Set by scripts/run_tests.py for the Locust processes it starts (plugins/setup/parent_watch.py)."""

PROFILE_VARIABLE = "LOCUST_ENV"
"""The environment variable that names a profile when --env is not given."""


def env_file() -> Path:
    """The .env file read at start; CHATSWARM_ENV_FILE names another (tests point it at /dev/null)."""
    return Path(os.environ.get("CHATSWARM_ENV_FILE") or REPO_ROOT / ".env")


def profile_from_args(argv: Sequence[str]) -> str | None:
    """The --env NAME of a command line (read before the full option parsing), or LOCUST_ENV."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--env", default=None)
    known, _ = parser.parse_known_args(list(argv))
    return known.env or os.environ.get(PROFILE_VARIABLE) or None


def load_env_files(profile: str | None) -> list[Path]:
    """Load ``.env.PROFILE`` (when a profile is named) and ``.env``; returns the files read."""
    base = env_file()
    loaded = []
    if profile:
        if not profile.replace("-", "").replace("_", "").isalnum():
            raise InputError(f"--env {profile!r}: a profile name is letters, digits, - and _ (e.g. dev, staging)")
        path = base.parent / f".env.{profile}"
        if not path.is_file():
            raise InputError(
                f"--env {profile}: no file {path}; create it with that profile's settings (see .env.example)"
            )
        load_dotenv(path, override=False)
        loaded.append(path)
    if base.is_file():
        load_dotenv(base, override=False)
        loaded.append(base)
    return loaded
