"""Many short Locust starts from one warmed-up process: each start is a fork that runs Locust's own ``main()``.

A Locust start spends most of its second or two importing Locust, gevent and Chatswarm's modules, and the
bad-input tests start Locust some seventy times, each ending at a check before any load. A server process
(``python -m tests.locust_forks``) imports all of that once; for each start it forks a child that runs
``locust.main.main()`` with the start's arguments and its output going to a file. The child is a real Locust
process in everything but its imports: it parses the command line, imports locustfile.py (whose plugins then
register on the child's own events), fires ``init`` and exits with Locust's exit code.

Protocol: one JSON line per start on the server's stdin, ``{"args": [...], "output": PATH}``; one line back,
``{"code": N}``.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90
"""A start that has not ended by then is killed (SIGALRM): it would have hung as a process of its own too."""


def locustfile_modules() -> list[str]:
    """The modules locustfile.py imports (imported in the server; locustfile.py itself runs in each child)."""
    tree = ast.parse((ROOT / "locustfile.py").read_text(encoding="utf-8"))
    return [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]


def serve() -> None:
    """Read starts from stdin until it closes; run each in a forked child."""
    import locust.main

    for module in locustfile_modules():
        importlib.import_module(module)
    for line in sys.stdin:
        start = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(locust.main.main, start["args"], start["output"])
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)


def _child(main: Any, args: list[str], output: str) -> None:
    signal.alarm(START_TIMEOUT_S)
    out = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.argv = ["locust", *args]
    code = 0
    try:
        main()
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
        code = 1 if isinstance(exit_.code, str) else int(exit_.code or 0)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


class LocustForks:
    """A fork server of one's own: ``run(args, output)`` is ``locust ARGS`` with its output in ``output``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.locust_forks"],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def run(self, args: list[str], output: Path) -> subprocess.CompletedProcess[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"args": args, "output": str(output)}) + "\n")
        self.process.stdin.flush()
        code = json.loads(self.process.stdout.readline())["code"]
        return subprocess.CompletedProcess(args, code, output.read_text(errors="replace"), "")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


if __name__ == "__main__":
    serve()
