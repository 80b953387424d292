"""Run one preconfigured test type: ``python scripts/run_tests.py TYPE [options] [-- extra locust args]``.

Runs ``config/TYPE.conf`` with Locust as a subprocess. With no ``--host`` and no ``CHATBOT_URL`` it starts
the built-in demo chatbot on a free loopback port and stops it afterwards. Locust's own output goes to
``console.log`` in the run folder; the console shows one live progress line, warnings and errors, and a
one-screen summary at the end. The exit code is Locust's (0 ok, 1 failures, 2 bad input, 3 SLO breach).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from demobot.launcher import DemobotProcess  # noqa: E402
from plugins.env_files import load_env_files  # noqa: E402
from plugins.paths import default_report_dir  # noqa: E402
from plugins.progress import PROGRESS_PREFIX  # noqa: E402
from plugins.target import check_host  # noqa: E402
from scripts.console import progress_line, summary_screen  # noqa: E402
from users.errors import InputError  # noqa: E402

CONFIG_DIR = ROOT / "config"
CONSOLE_LOG = "console.log"
"""Everything Locust printed, in the run folder (the plugins' own run.log holds the log records)."""
SHOWN_LOG_MARKERS = ("/WARNING/", "/ERROR/", "/CRITICAL/", "chatswarm: error", "locust: error")
"""Locust output lines that the console shows as they come (everything goes to run.log)."""

PROGRESS_EVERY_S = 10.0
"""When the console is not a terminal, print a progress line this often."""


class UsageError(Exception):
    """A bad command line; printed as one line, exit code 2."""


def test_types() -> list[str]:
    """Test types are the config files: config/TYPE.conf."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.conf"))


def read_conf(path: Path) -> dict[str, str]:
    """The ``key = value`` settings of a Locust config file."""
    settings = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and whatever follows ``--`` (passed to Locust unchanged)."""
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="run_tests.py",
        description="Run a preconfigured Chatswarm test type against a chatbot (default: the built-in demobot).",
        epilog="Everything after -- goes to Locust unchanged, e.g. -- --think-time 0 --prompts my.jsonl",
    )
    parser.add_argument("type", help=f"test type, one of: {', '.join(test_types())}")
    parser.add_argument("--host", help="URL of the chatbot (default: CHATBOT_URL, else start the demo chatbot)")
    parser.add_argument("--users", type=int, help="number of simulated users (overrides the config file)")
    parser.add_argument("--duration", help="how long to run, e.g. 90s or 5m (overrides the config file)")
    parser.add_argument("--report-dir", help="run folder (default reports/TYPE-TIMESTAMP)")
    parser.add_argument("--env", help="credential profile: also load .env.NAME (e.g. dev, staging)")
    parser.error = lambda message: (_ for _ in ()).throw(UsageError(message))  # type: ignore[method-assign]
    options = parser.parse_args(argv)
    if options.type not in test_types():
        raise UsageError(f"unknown test type {options.type!r}; available: {', '.join(test_types())}")
    if options.users is not None and options.users < 1:
        raise UsageError("--users must be 1 or more")
    return options, extra


def locust_command(
    options: argparse.Namespace, host: str, report_dir: Path, extra: list[str], server_pid: int | None = None
) -> list[str]:
    """The Locust command line for this run (watching the server's resources when it runs here)."""
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--config", f"config/{options.type}.conf"]
    command += ["--headless", "--host", host, "--report-dir", str(report_dir), "--test-type", options.type]
    command += ["--progress"]
    if server_pid is not None:
        command += ["--monitor-pid", str(server_pid)]
    if options.users is not None:
        command += ["--users", str(options.users)]
    if options.duration:
        command += ["--run-time", options.duration]
    if options.env:
        command += ["--env", options.env]
    return command + extra


@contextlib.contextmanager
def target(options: argparse.Namespace, conf: dict[str, str]) -> Iterator[tuple[str, int | None]]:
    """The chatbot's URL and, when it runs here, its process id: --host, CHATBOT_URL, or a demo chatbot."""
    host = options.host or os.environ.get("CHATBOT_URL")
    if host:
        check_host(host)
        yield host, None
        return
    demobot_flags = conf.get("demobot-args", "").split()
    print(f"Starting the demo chatbot {' '.join(demobot_flags)}".rstrip(), flush=True)
    with DemobotProcess(*demobot_flags) as demobot:
        yield demobot.url, demobot.pid


def run_locust(command: list[str], log_path: Path) -> tuple[int, bool]:
    """Run Locust, logging everything to log_path and showing progress and problems on the console.

    Returns Locust's exit code and whether an error line was shown.
    """
    interactive = sys.stdout.isatty()
    last_printed = 0.0
    progress_shown = error_shown = False
    with (
        log_path.open("w", encoding="utf-8") as log,
        subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as locust,
    ):
        try:
            for line in locust.stdout or ():
                if line.startswith(PROGRESS_PREFIX):
                    text = progress_line(json.loads(line[len(PROGRESS_PREFIX) :]))
                    if interactive:
                        print(f"\r{text:<100}", end="", flush=True)
                        progress_shown = True
                    elif time.monotonic() - last_printed >= PROGRESS_EVERY_S:
                        print(text, flush=True)
                        last_printed = time.monotonic()
                    continue
                log.write(line)
                if any(marker in line for marker in SHOWN_LOG_MARKERS):
                    if progress_shown:
                        print()
                        progress_shown = False
                    print(line.rstrip(), flush=True)
                    error_shown = error_shown or "error" in line.lower()
        except KeyboardInterrupt:
            locust.send_signal(signal.SIGINT)
            print("\nInterrupted: waiting for Locust to write the report …", flush=True)
        code = locust.wait()
    if progress_shown:
        print()
    return code, error_shown


def main(argv: list[str] | None = None) -> int:
    """Run one test type end to end; returns the exit code."""
    try:
        options, extra = parse_args(sys.argv[1:] if argv is None else argv)
        load_env_files(options.env)
    except (UsageError, InputError) as error:
        print(f"run_tests: error: {error}", file=sys.stderr)
        return 2
    conf = read_conf(CONFIG_DIR / f"{options.type}.conf")
    report_dir = Path(options.report_dir) if options.report_dir else ROOT / default_report_dir(options.type)
    report_dir = report_dir.resolve()
    try:
        with target(options, conf) as (host, server_pid):
            report_dir.mkdir(parents=True, exist_ok=True)
            console_log = report_dir / CONSOLE_LOG
            print(f"Running the {options.type} test against {host} (Locust output: {console_log})")
            command = locust_command(options, host, report_dir, extra, server_pid)
            code, error_shown = run_locust(command, console_log)
    except (InputError, RuntimeError) as error:  # a bad target, or the demo chatbot did not start
        print(f"run_tests: error: {error}", file=sys.stderr)
        return 2
    summary_path = report_dir / "summary.json"
    if summary_path.exists():
        print()
        print(summary_screen(json.loads(summary_path.read_text(encoding="utf-8")), report_dir))
    elif code not in (0, 1) and not error_shown:
        tail = (report_dir / CONSOLE_LOG).read_text(encoding="utf-8").splitlines()[-15:]
        print("\n".join(["", f"Locust stopped early; the end of {CONSOLE_LOG}:", *tail]), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
