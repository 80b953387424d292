"""Shared fixtures: the real demo chatbot on a free loopback port, and real headless Locust runs against it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")
# The test process stays unpatched (pytest-xdist's workers talk over real threads and pipes); the Locust and
# demobot processes the tests start are patched as usual, since clean_env() drops every LOCUST_* variable.

import pytest

from demobot.launcher import DemobotProcess
from tests.timing_lanes import (  # noqa: F401 - pytest finds its hooks here
    ROOT,
    TIMING_MARK,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_protocol,
    pytest_unconfigure,
    pytest_xdist_make_scheduler,
)


@dataclass
class LocustRun:
    """What a finished Locust process left: exit code, output, and its run folder."""

    returncode: int
    output: str
    report_dir: Path

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.report_dir / "summary.json").read_text())

    def row(self, key: str) -> dict[str, Any]:
        """One request row of summary.json, e.g. ``row("POST login")``."""
        return self.summary["requests"][key]

    def rows(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.summary["requests"].items() if k.startswith(prefix)}


RUN_TESTS = [sys.executable, str(ROOT / "scripts" / "run_tests.py")]
"""The command of scripts/run_tests.py."""


def run_tests(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run scripts/run_tests.py ARGS to completion in a clean environment."""
    return subprocess.run([*RUN_TESTS, *args], env=clean_env(), capture_output=True, text=True, timeout=timeout)


def probe_figures(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a probe of tests/ (``script``: a measurement made in a fresh process, most of them patched as Locust's)
    with ``args``; the JSON of its last line. It must end cleanly, with no traceback (a greenlet that died)."""
    command = [sys.executable, str(ROOT / "tests" / script), *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without Chatswarm/Locust settings that could leak in, plus extras."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "CHATBOT_", "LOGIN_"))}
    env["CHATSWARM_ENV_FILE"] = os.devnull  # a developer's own .env must not change what tests see
    env.update(extra)
    return env


@contextlib.contextmanager
def loopback_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair on loopback (client, peer), both closed afterwards."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
    with client, peer:
        yield client, peer


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def demobot() -> Iterator[Callable[..., DemobotProcess]]:
    """Start demo chatbots with the given flags; all are stopped when the test ends."""
    started: list[DemobotProcess] = []

    def start(*flags: str) -> DemobotProcess:
        process = DemobotProcess(*flags)
        process.__enter__()
        started.append(process)
        return process

    yield start
    for process in started:
        process.__exit__(None, None, None)


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The last second of the shipped speech sample: speech that runs to its end, so calls stay short."""
    from users.audio.audio_codec import read_wav, write_wav
    from users.audio.audio_stream import DEFAULT_AUDIO_FILE

    samples, rate = read_wav(DEFAULT_AUDIO_FILE)
    path = tmp_path_factory.mktemp("audio") / "one_second.wav"
    write_wav(path, samples[-rate:], rate)
    return str(path)


def locust_run(
    report_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120, report_page: bool = False
) -> LocustRun:
    """Run ``locust -f locustfile.py --headless ARGS`` to completion with ``report_dir`` as its run folder."""
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "--report-dir", str(report_dir)]
    if not report_page:  # index.html costs 1-2 s of CPU per run; the tests of the page ask for it
        command.append("--skip-report-page")
    if "--processes" in args:  # a master of its own: Locust's default port 5557 may be taken
        port = str(free_port())
        command += ["--master-bind-port", port, "--master-port", port]
    result = subprocess.run(
        [*command, *args], cwd=ROOT, env=env or clean_env(), capture_output=True, text=True, timeout=timeout
    )
    return LocustRun(result.returncode, result.stdout + result.stderr, report_dir)


@pytest.fixture
def run_locust(tmp_path: Path) -> Callable[..., LocustRun]:
    """``locust_run`` in a fresh run folder under the test's tmp_path."""
    counter = iter(range(1000))

    def run(*args: str, **kwargs: Any) -> LocustRun:
        return locust_run(tmp_path / f"run{next(counter)}", *args, **kwargs)

    return run


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Chromium flags for the browser tests (headless, in a container)."""


def one_error_line(output: str) -> str:
    """The single error line of a failed start; fails the test if there is a traceback or several errors."""
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, output
    return errors[0]


def two_workers() -> tuple[str, ...]:
    """Locust options for a master and two worker processes on a port of their own (not 5557, which
    another Locust run on the machine may be using)."""
    port = str(free_port())
    return ("--processes", "2", "--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--master-port", port)


def failure_counts(run: LocustRun) -> Counter[str]:
    """How often each failure message occurred, over all request names."""
    counts: Counter[str] = Counter()
    for failure in run.summary["failures"]:
        counts[failure["error"]] += failure["occurrences"]
    return counts
