"""Start and stop a real demobot process on a free loopback port (for tests and scripts/run_tests.py)."""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_PREFIX = "demobot listening on "
STDERR_TAIL_LINES = 20
STOP_TIMEOUT_S = 5.0

PARENT_ENV = "DEMOBOT_PARENT_PID"
"""The launcher starts demobot in a process group of its own (a Ctrl-C meant for the load test must not stop
the target mid-run), so demobot stops by itself when the process named here is no longer its parent."""


class DemobotProcess:
    """A `python -m demobot` child process on 127.0.0.1 and a free port; `.url` is set once it is ready.

    Use as a context manager: `with DemobotProcess("--slots", "1") as bot: requests.get(bot.url + "/stats")`.
    """

    def __init__(self, *flags: str, python: str = sys.executable, startup_timeout_s: float = 20.0) -> None:
        self.flags = flags
        self.python = python
        self.startup_timeout_s = startup_timeout_s
        self.url: str | None = None
        self.pid: int | None = None
        self._process: subprocess.Popen[str] | None = None
        self._stdout_lines: queue.Queue[str | None] = queue.Queue()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._threads: list[threading.Thread] = []

    @property
    def command(self) -> list[str]:
        """The command line the process runs with (later flags override the host/port defaults)."""
        return [self.python, "-m", "demobot", "--host", "127.0.0.1", "--port", "0", *self.flags]

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return None if self._process is None else self._process.poll()

    def stderr_tail(self) -> str:
        """The last lines demobot wrote to stderr."""
        return "".join(self._stderr_tail)

    def start(self) -> DemobotProcess:
        """Start demobot and wait for its readiness line; raises RuntimeError (with its stderr) if it fails."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", PARENT_ENV: str(os.getpid())}
        self._process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=env,
            process_group=0,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.pid = self._process.pid
        self._drain(self._process.stdout, self._stdout_lines.put, end=lambda: self._stdout_lines.put(None))
        self._drain(self._process.stderr, self._stderr_tail.append)
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise RuntimeError(self._failure(f"not ready within {self.startup_timeout_s:g} s"))
            try:
                line = self._stdout_lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:  # stdout closed: the process is exiting
                self._process.wait(timeout=STOP_TIMEOUT_S)
                self._join_threads()
                raise RuntimeError(self._failure(f"exited with code {self._process.returncode}"))
            if line.startswith(READY_PREFIX):
                self.url = line[len(READY_PREFIX) :].strip()
                return self

    def stop(self) -> int | None:
        """SIGTERM, wait up to 5 s, then kill; returns the exit code (None if never started)."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._join_threads()
        return process.returncode

    def stats(self) -> dict:
        """demobot's live counters (GET /stats)."""
        if self.url is None:
            raise RuntimeError("demobot is not running")
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as response:
            return json.loads(response.read())

    def __enter__(self) -> DemobotProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _drain(
        self, stream: IO[str] | None, sink: Callable[[str], object], end: Callable[[], object] | None = None
    ) -> None:
        """Read a pipe to its end on a daemon thread so demobot never blocks on a full pipe."""

        def pump() -> None:
            assert stream is not None
            for line in stream:
                sink(line)
            stream.close()
            if end is not None:
                end()

        thread = threading.Thread(target=pump, name=f"demobot-{self.pid}-pipe", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _join_threads(self) -> None:
        for thread in self._threads:
            thread.join(timeout=1.0)

    def _failure(self, what: str) -> str:
        # --account values hold passwords: keep them out of error messages.
        args = self.command[1:]
        shown = ["EMAIL:***" if i and args[i - 1] == "--account" else arg for i, arg in enumerate(args)]
        command = " ".join(shown)
        tail = self.stderr_tail().strip() or "(no stderr output)"
        return f"demobot ({command}) {what}:\n{tail}"
