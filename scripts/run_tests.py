"""Run one preconfigured test type: ``python scripts/run_tests.py TYPE [options] [-- extra locust args]``.

Chatswarm's and Locust's own options may follow TYPE directly (``load --chat-path /v2/ask``); what this
script does not know goes to Locust, which refuses a misspelt one. ``--`` still passes everything after it.

Runs ``config/TYPE.conf`` with Locust as a subprocess. With no ``--host`` and no ``CHATBOT_URL`` it starts
the built-in demo chatbot on a free loopback port and stops it afterwards. Locust's own output goes to
``console.log`` in the run folder; the console shows one live progress line, warnings and errors, and a
one-screen summary at the end. The exit code is Locust's (0 ok, 1 failures, 2 bad input, 3 SLO breach,
4 interrupted).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:
    from core.env_files import PARENT_VARIABLE, load_env_files
    from core.errors import InputError
    from core.input_files import MAX_CONFIG_FILE_BYTES, read_text_file
    from core.paths import default_report_dir
    from core.target import check_host
    from demobot.launcher import DemobotProcess
    from report.console import PROGRESS_PREFIX, progress_line, summary_screen
except ModuleNotFoundError as missing:  # started outside the virtualenv the README sets up
    from core.errors import missing_dependency

    sys.exit(missing_dependency(missing, "run_tests"))

CONFIG_DIR = ROOT / "config"
CONSOLE_LOG = "console.log"
"""Everything Locust printed, in the run folder (the plugins' own run.log holds the log records)."""
SHOWN_LOG_MARKERS = ("/WARNING/", "/ERROR/", "/CRITICAL/", "chatswarm: error", "locust: error", "Did you mean")
"""Locust output lines that the console shows as they come (everything goes to console.log): problems, and the
spelling Locust suggests for a mistyped option."""
LOCUST_MODULE_ERROR = "__main__.py: error:"
"""How Locust's command-line errors begin when it runs as ``python -m locust``; shown as ``locust: error:``."""
PROGRESS_EVERY_S = 10.0
"""When the console is not a terminal, print a progress line this often."""

LOOPBACK = "127.0.0.1"
WORKERS_MAX_WAIT_S = 60
"""The master gives up when its local workers have not all connected within this time."""
WORKER_STOP_TIMEOUT_S = 15.0
"""After the master ends, how long its workers may take to quit before they are killed."""


DURATION = re.compile(r"\d+|(?=\d)(\d+h)?(\d+m)?(\d+s)?")
"""What Locust's --run-time accepts: 20, 20s, 3m, 2h, 1h20m …"""


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
    """Our options, and the rest for Locust: options this script does not know, and whatever follows ``--``."""
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="run_tests.py",
        description="Run a preconfigured Chatswarm test type against a chatbot (default: the built-in demobot).",
        epilog="Any other option goes to Locust and Chatswarm's plugins, e.g. --think-time 0 --prompts my.jsonl "
        "(README lists them); everything after -- goes to Locust unchanged.",
        allow_abbrev=False,  # an abbreviation of a Locust option must reach Locust, not match one of ours
    )
    parser.add_argument("type", help=f"test type, one of: {', '.join(test_types())}")
    parser.add_argument("--host", help="URL of the chatbot (default: CHATBOT_URL, else start the demo chatbot)")
    parser.add_argument("--users", type=int, help="number of simulated users (overrides the config file)")
    parser.add_argument("--duration", help="how long to run, e.g. 90s or 5m (overrides the config file)")
    parser.add_argument("--report-dir", help="run folder (default reports/TYPE-TIMESTAMP)")
    parser.add_argument("--env", help="credential profile: also load .env.NAME (e.g. dev, staging)")
    parser.add_argument("--workers", type=int, help="run a master and this many local worker processes")
    parser.add_argument("--processes", type=int, help="Locust's --processes: worker processes per worker (or here)")
    parser.error = lambda message: (_ for _ in ()).throw(UsageError(message))  # type: ignore[method-assign]
    if {"-h", "--help"} & set(argv):
        print(parser.format_help())
        print(chatswarm_options())
        raise SystemExit(0)
    options, unknown = parser.parse_known_args(argv)
    extra = [*unknown, *extra]
    if options.type not in test_types():
        raise UsageError(f"unknown test type {options.type!r}; available: {', '.join(test_types())}")
    if options.users is not None and options.users < 1:
        raise UsageError("--users must be 1 or more")
    if options.duration is not None and not DURATION.fullmatch(options.duration):
        raise UsageError(f"--duration {options.duration!r}: give seconds or a span like 90s, 5m, 1h30m")
    if options.duration is not None and not options.duration.strip("0hms"):  # Locust: a run time of 0 is no limit
        raise UsageError(f"--duration {options.duration!r}: must be longer than zero")
    if options.workers is not None and options.workers < 1:
        raise UsageError("--workers must be 1 or more")
    if options.processes is not None and options.processes < 1 and options.processes != -1:
        raise UsageError("--processes must be 1 or more, or -1 for one per CPU core")
    return options, extra


def check_config_files(extra: list[str]) -> None:
    """Refuse a binary or non-UTF-8 --config among the extra Locust arguments before Locust starts: Locust reads
    config files before it imports locustfile.py, so such a file ends in its traceback, out of our plugins' reach."""
    for at, argument in enumerate(extra):
        name = argument.removeprefix("--config=") if argument.startswith("--config=") else ""
        if argument == "--config" and at + 1 < len(extra):
            name = extra[at + 1]
        if name:
            read_text_file(name, "--config", MAX_CONFIG_FILE_BYTES)


def chatswarm_options() -> str:
    """Chatswarm's options by group, as ``locust -f locustfile.py --chatswarm-help`` lists them."""
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--chatswarm-help"]
    listed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    return listed.stdout if listed.returncode == 0 else f"(listing Chatswarm's options failed: {listed.stderr.strip()})"


def expected_workers(options: argparse.Namespace) -> int:
    """How many worker processes the master of a --workers run waits for."""
    per_worker = (os.cpu_count() or 1) if options.processes == -1 else options.processes or 1
    return options.workers * per_worker


def _locust(options: argparse.Namespace, host: str) -> list[str]:
    """The start of every Locust command of this run: the test type's config file, the target, the profile."""
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--config", f"config/{options.type}.conf"]
    command += ["--host", host]
    return command + (["--env", options.env] if options.env else [])


def locust_command(
    options: argparse.Namespace,
    host: str,
    report_dir: Path,
    extra: list[str],
    server_pid: int | None = None,
    master_port: int | None = None,
) -> list[str]:
    """The Locust command line for this run, or its master's (watching the server's resources when it runs here)."""
    command = _locust(options, host)
    command += ["--headless", "--report-dir", str(report_dir), "--test-type", options.type, "--progress"]
    if server_pid is not None:
        command += ["--monitor-pid", str(server_pid)]
    if options.users is not None:
        command += ["--users", str(options.users)]
    if options.duration:
        command += ["--run-time", options.duration]
    if options.workers:
        command += ["--master", "--expect-workers", str(expected_workers(options))]
        command += ["--expect-workers-max-wait", str(WORKERS_MAX_WAIT_S), "--master-bind-host", LOOPBACK]
        command += ["--master-bind-port", str(master_port)]
    elif options.processes:
        command += ["--processes", str(options.processes), "--master-bind-host", LOOPBACK]
        if master_port is not None:
            command += ["--master-bind-port", str(master_port), "--master-port", str(master_port)]
    return command + extra


def worker_command(options: argparse.Namespace, host: str, extra: list[str], master_port: int) -> list[str]:
    """A local worker's command line: the same test type and extra options, connected to the master."""
    command = [*_locust(options, host), "--worker", "--master-host", LOOPBACK, "--master-port", str(master_port)]
    if options.processes:
        command += ["--processes", str(options.processes)]
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


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now (for the master's worker connections)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def child_env() -> dict[str, str]:
    """Locust's environment: ours, plus our pid, so that Locust stops by itself if this script dies."""
    return {**os.environ, PARENT_VARIABLE: str(os.getpid())}


def as_locust_says(line: str) -> str:
    """A line of Locust's output, its command-line error named as ``locust`` names it (not ``__main__.py``)."""
    return line.replace(LOCUST_MODULE_ERROR, "locust: error:")


class LocalWorkers:
    """Local worker processes, each in a process group of its own, with its output in worker-N.log."""

    def __init__(self, commands: list[list[str]], report_dir: Path) -> None:
        self.logs = [report_dir / f"worker-{number}.log" for number in range(1, len(commands) + 1)]
        self.processes: list[subprocess.Popen[bytes]] = []
        for command, log_path in zip(commands, self.logs, strict=True):
            with log_path.open("wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        command, cwd=ROOT, env=child_env(), stdout=log, stderr=subprocess.STDOUT, process_group=0
                    )
                )

    def stop(self, grace_s: float) -> None:
        """Wait for the workers to quit (the master tells them to), then kill what is left, forks included."""
        deadline = time.monotonic() + grace_s
        for worker in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=max(deadline - time.monotonic(), 0.1))
            if worker.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()

    def problems(self) -> list[str]:
        """One line per worker that ended with an error, with the last error line of its log."""
        lines = []
        for number, (worker, log_path) in enumerate(zip(self.processes, self.logs, strict=True), 1):
            if worker.returncode not in (0, 1, -signal.SIGKILL):
                errors = [line for line in log_path.read_text(errors="replace").splitlines() if "error" in line.lower()]
                detail = as_locust_says(errors[-1].strip()) if errors else f"see {log_path}"
                lines.append(f"worker {number} exited with code {worker.returncode}: {detail}")
        return lines


class SignalForwarder:
    """Ctrl-C, SIGTERM and SIGHUP reach Locust once, through this script (it runs in its own process group),
    so it stops and writes what it measured; before Locust runs they stop this script."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.locust: subprocess.Popen[str] | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalForwarder:
        self._previous = {signum: signal.signal(signum, self._forward) for signum in self.SIGNALS}
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _forward(self, signum: int, _frame: object) -> None:
        if self.locust is None or self.locust.poll() is not None:
            raise KeyboardInterrupt
        self.locust.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)
        print("\nInterrupted: waiting for Locust to write the report …", flush=True)


def run_locust(command: list[str], log_path: Path, signals: SignalForwarder) -> tuple[int, bool]:
    """Run Locust, logging everything to log_path and showing progress and problems on the console.

    Returns Locust's exit code and whether an error line was shown.
    """
    interactive = sys.stdout.isatty()
    last_printed = 0.0
    progress_shown = error_shown = False
    with (
        log_path.open("w", encoding="utf-8") as log,
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            process_group=0,
        ) as locust,
    ):
        signals.locust = locust
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
            line = as_locust_says(line)
            log.write(line)
            if any(marker in line for marker in SHOWN_LOG_MARKERS):
                if progress_shown:
                    print()
                    progress_shown = False
                print(line.rstrip(), flush=True)
                error_shown = error_shown or "error" in line.lower()
        code = locust.wait()
    if progress_shown:
        print()
    return code, error_shown


def remove_if_refused(report_dir: Path) -> None:
    """Remove the run folder of a run Locust refused before it began (its error is on the console already): one
    that holds only the console's and the local workers' logs."""
    with contextlib.suppress(OSError):
        logs = list(report_dir.iterdir())
        if all(path.name == CONSOLE_LOG or re.fullmatch(r"worker-\d+\.log", path.name) for path in logs):
            for path in logs:
                path.unlink()
            report_dir.rmdir()


def main(argv: list[str] | None = None) -> int:
    """Run one test type end to end; returns the exit code."""
    try:
        options, extra = parse_args(sys.argv[1:] if argv is None else argv)
        check_config_files(extra)
        load_env_files(options.env)
    except (UsageError, InputError) as error:
        print(f"run_tests: error: {error}", file=sys.stderr)
        return 2
    conf = read_conf(CONFIG_DIR / f"{options.type}.conf")
    report_dir = Path(options.report_dir) if options.report_dir else ROOT / default_report_dir(options.type)
    report_dir = report_dir.resolve()
    made_here = not report_dir.exists()
    try:
        with SignalForwarder() as signals, target(options, conf) as (host, server_pid):
            report_dir.mkdir(parents=True, exist_ok=True)
            console_log = report_dir / CONSOLE_LOG
            port = free_port() if options.workers or options.processes else None
            command = locust_command(options, host, report_dir, extra, server_pid, port)
            workers = [worker_command(options, host, extra, port) for _ in range(options.workers or 0)] if port else []
            spread = f" with {len(workers)} local workers" if workers else ""
            print(f"Running the {options.type} test against {host}{spread} (Locust output: {console_log})")
            local = LocalWorkers(workers, report_dir)
            code = 2
            try:
                code, error_shown = run_locust(command, console_log, signals)
            finally:
                local.stop(grace_s=2.0 if code == 2 else WORKER_STOP_TIMEOUT_S)
            for line in local.problems():
                print(f"run_tests: {line}", file=sys.stderr)
    except (InputError, RuntimeError) as error:  # a bad target, or the demo chatbot did not start
        print(f"run_tests: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before Locust ran
        print("\nrun_tests: interrupted", file=sys.stderr)
        return 130
    if code == 2 and made_here and error_shown:
        remove_if_refused(report_dir)
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
