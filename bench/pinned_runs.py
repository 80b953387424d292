"""What the streaming and WebSocket benchmarks share: a server pinned to one core, Locust pinned to the other, and
the CPU sampling around a run (the machine is shared: the rest of its work is measured too)."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_servers import BenchServer  # noqa: E402

from demobot.launcher import DemobotProcess  # noqa: E402

CLIENT_CORE, SERVER_CORE = 0, 1
OTHER_WORK_LIMIT_PERCENT = 25
"""A run is repeated when the rest of the machine used more than this share of a core."""
ANSWER_TOKENS = 32
DEMOBOT_QUEUE = ("--slots", "1000", "--queue-limit", "1000")
SATURATED_CPU_PERCENT = 90
"""Above this much of its core the load generator's timings are not trustworthy (Locust's own threshold)."""


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all cores)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def scheduler_times(pid: int) -> tuple[float, float]:
    """Seconds a process has run on a CPU, and seconds it was ready to run but waited for one."""
    fields = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(fields[0]) / 1e9, int(fields[1]) / 1e9


@contextlib.contextmanager
def demobot(*flags: str) -> Iterator[DemobotProcess]:
    """demobot pinned to the server core."""
    with BenchServer().pinned(SERVER_CORE, *flags) as bot:
        yield bot


def percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * percent / 100) - 1))]


def run_locust(args: list[str], report_dir: Path, duration_s: int) -> tuple[subprocess.CompletedProcess, float]:
    """Run Locust pinned to the client core; returns the process and its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [sys.executable, "-m", "locust", "--headless", "-t", f"{duration_s}s", "--stop-timeout", "2", *args]
    command += ["--csv", str(report_dir / "locust"), "--only-summary"]
    env = {**os.environ, "CHATSWARM_ENV_FILE": os.devnull}
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=duration_s + 120,
        preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CORE}),
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result, cpu


def pinned_locust(command: list[str]) -> subprocess.Popen:
    """Start a Locust command line on the client core, with no .env read, its stderr piped (for its summary)."""
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "CHATSWARM_ENV_FILE": os.devnull},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CORE}),
    )


def run_sampled(args: list[str], report_dir: Path, duration_s: int, server_pid: int) -> tuple[str, dict]:
    """Run Locust pinned to the client core; returns its stderr and, over the middle half of the run (start-up,
    the probe and the run folder's writing left out), the CPU % of the client and of the server, the client's
    time ready to run but waiting for its core, and the CPU the rest of the machine used (it is shared)."""
    command = [sys.executable, "-m", "locust", "--headless", "-t", f"{duration_s}s", "--stop-timeout", "2", *args]
    command += ["--csv", str(report_dir / "locust"), "--only-summary"]
    samples: list = []
    with pinned_locust(command) as process:
        server = psutil.Process(server_pid)
        stderr = threading.Thread(target=lambda: samples.append(process.stderr.read()), daemon=True)  # type: ignore[union-attr]
        stderr.start()
        while process.poll() is None:
            with contextlib.suppress(OSError, psutil.Error):
                on_cpu, waiting = scheduler_times(process.pid)
                samples.append((time.monotonic(), on_cpu, waiting, sum(server.cpu_times()[:2]), busy_cpu_s()))
            time.sleep(0.25)
        stderr.join(10)
    text = next((s for s in samples if isinstance(s, str)), "")
    timed = [s for s in samples if isinstance(s, tuple)]
    first, last = timed[len(timed) // 4], timed[3 * len(timed) // 4]
    client, waiting, server_cpu, busy = (
        100 * (b - a) / (last[0] - first[0]) for a, b in zip(first[1:], last[1:], strict=True)
    )
    return text, {
        "cpu_percent": client,
        "waiting_percent": waiting,
        "server_cpu_percent": server_cpu,
        "others_percent": max(0.0, busy - client - server_cpu),
    }
