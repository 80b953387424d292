"""Benchmark: hostile HTTP targets beside well-behaved users, against demobot.

    .venv/bin/python bench/hostile_http.py [--duration 20]

Three runs of --duration seconds: 4 RestChatUsers against demobot alone (clean); the same beside 4 users whose
server drips its response headers a byte every 0.2 s; the same beside 4 StreamingChatUsers whose server sends an
endless SSE body without a newline. Prints each run's wall time, the load generator's peak RSS and the
well-behaved users' p50 (their successful rows in requests.csv: every hostile exchange fails) as a Markdown
table for docs/PERFORMANCE.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demobot.launcher import DemobotProcess  # noqa: E402

USERS = 4


def serve(answer: Callable[[socket.socket], None]) -> str:
    """A loopback server answering each connection with ``answer`` on a thread; returns its URL."""
    listener = socket.create_server(("127.0.0.1", 0))

    def one(connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                answer(connection)
            except OSError:
                return

    def accept() -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=one, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def drip_headers(connection: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"z" * 100_000:
        connection.sendall(bytes([byte]))
        time.sleep(0.2)


def endless_sse(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: ")
    block = b"x" * 65536
    for _ in range(1 << 20):
        connection.sendall(block)


def run(host: str, mix: str, users: int, duration_s: int, env: dict[str, str]) -> dict[str, float | str]:
    """One Locust run; its wall time, peak RSS and the p50 of its successful exchanges."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "locust", "-f", "bench/hostile_locustfile.py", "--headless", "--host", host,
                   "--user-mix", mix, "-u", str(users), "-r", str(users), "-t", f"{duration_s}s", "--think-time",
                   "0.2", "--request-timeout", "5", "--stream-timeout", "5", "--monitor-interval", "0.5",
                   "--skip-report-page", "--report-dir", folder]  # fmt: skip
        started = time.monotonic()
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=duration_s + 120)
        wall_s = time.monotonic() - started
        summary = json.loads((Path(folder) / "summary.json").read_text())
        with open(Path(folder) / "requests.csv") as rows:
            ok = [float(row["response_time_ms"]) for row in csv.DictReader(rows) if row["status"] == "ok"]
        failures = sorted({failure["error"] for failure in summary["failures"]})
    peak = summary["resources"]["processes"]["load generator"]["memory_mb"]["peak"]
    return {"wall_s": wall_s, "peak_mb": peak, "p50_ms": statistics.median(ok) if ok else float("nan"),
            "ok": len(ok), "failures": ", ".join(failures) or "none"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20)
    duration = parser.parse_args().duration
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "CHATBOT_"))}
    env.update(CHATSWARM_ENV_FILE=os.devnull, HOSTILE_DRIP_URL=serve(drip_headers), HOSTILE_SSE_URL=serve(endless_sse))
    cases = (
        ("clean", "RestChatUser", USERS),
        ("slow-drip headers", "RestChatUser DrippedHeadersUser", 2 * USERS),
        ("endless newline-free SSE", "RestChatUser EndlessSseUser", 2 * USERS),
    )
    with DemobotProcess() as bot:
        results = [(name, run(bot.url, mix, users, duration, env)) for name, mix, users in cases]
    clean_p50 = results[0][1]["p50_ms"]
    print(f"| case (-t {duration}s) | wall time (s) | peak RSS (MB) | well-behaved p50 (ms) | vs clean | "
          "well-behaved answers | failures |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, figures in results:
        ratio = figures["p50_ms"] / clean_p50
        print(f"| {name} | {figures['wall_s']:.1f} | {figures['peak_mb']:.0f} | {figures['p50_ms']:.1f} | "
              f"{ratio:.2f}x | {figures['ok']} | {figures['failures']} |")  # fmt: skip


if __name__ == "__main__":
    main()
