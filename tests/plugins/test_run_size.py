"""The run-size check refuses only runs that would do nothing or could not run; the refusals themselves, as a real
Locust start sees them, are in test_bad_input.py."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

import pytest

from core.errors import InputError
from plugins.setup.run_size import MAX_USERS_PER_PROCESS, check_options


def options(**values: Any) -> Namespace:
    """Parsed options as Locust leaves them for a headless run, with ``values`` on top."""
    return Namespace(**{"num_users": 1, "headless": True, "autostart": False, "master": False, **values})


@pytest.mark.parametrize(
    "values",
    [
        {"num_users": None},  # no -u: Locust starts one user
        {"num_users": 0, "headless": False},  # the web UI: the users are typed in later
        {"num_users": 0, "shape": "ramp"},  # the shape sets the users itself
        {"num_users": MAX_USERS_PER_PROCESS},
        {"num_users": 3 * MAX_USERS_PER_PROCESS, "master": True, "expect_workers": 3},
        {"num_users": 2 * MAX_USERS_PER_PROCESS, "max_users_per_process": 2 * MAX_USERS_PER_PROCESS},
    ],
    ids=["no-u", "web-ui", "shape", "at-the-cap", "spread-over-workers", "cap-raised"],
)
def test_runs_that_can_run_are_let_through(values: dict[str, Any]) -> None:
    check_options(options(**values))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"num_users": 0, "autostart": True, "headless": False}, "--users (-u) 0: the run would start no user"),
        ({"num_users": MAX_USERS_PER_PROCESS + 1}, f"one process runs at most {MAX_USERS_PER_PROCESS} users"),
        (
            {"num_users": 3 * MAX_USERS_PER_PROCESS + 3, "master": True, "expect_workers": 3},
            f"over 3 worker processes is {MAX_USERS_PER_PROCESS + 1}",
        ),
        ({"shape": "pid", "max_users": MAX_USERS_PER_PROCESS + 1}, f"--max-users {MAX_USERS_PER_PROCESS + 1}:"),
    ],
    ids=["autostart-zero", "one-process", "workers", "shape-top"],
)
def test_runs_that_cannot_run_are_refused(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(InputError) as refused:
        check_options(options(**values))
    assert expected in str(refused.value)
