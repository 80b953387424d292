"""Benchmark: hostile WebSocket targets beside well-behaved users (issue 16's "done when" for WebSockets).

    .venv/bin/python bench/hostile_ws.py [--duration 20]

Three runs of --duration seconds with the same users: RestChatUsers against demobot (the well-behaved users),
and WebSocketChatUsers and AudioStreamUsers aimed (by full ws:// URLs in --ws-path and --audio-path) at
  - clean: demobot's own /ws/chat and /ws/audio,
  - ping flood: a server that pings as fast as the socket takes it (tests/hostile_ws.py),
  - 600 MB frame: a server that answers with the header of a 600 MB text frame, then its payload.
Prints one Markdown row per run: the run's wall time (Locust's start to its exit), the peak RSS (sampled here
every 0.1 s with psutil, and the resource monitor's), the well-behaved users' p50 and count, and the WebSocket
users' failure names. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demobot.launcher import DemobotProcess  # noqa: E402
from tests.hostile_ws import HostileWebSocketServer  # noqa: E402

USERS = ("--user-mix", "RestChatUser:2 WebSocketChatUser:1 AudioStreamUser:1", "-u", "8", "-r", "8")
"""Four well-behaved RestChatUsers, two WebSocket chat users and two callers."""

DEMOBOT = ("--ttft-ms", "50", "--token-ms", "1", "--answer-tokens", "2")


def run(name: str, ws_url: str, audio_url: str, bot: DemobotProcess, duration_s: int, work: Path) -> dict:
    """One Locust run; its wall time, peak RSS (ours and the monitor's), and the RestChatUsers' p50."""
    report = work / name
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "--skip-report-page"]
    command += ["--host", bot.url, *USERS, "-t", f"{duration_s}s", "--think-time", "0.2", "--report-dir", str(report)]
    command += ["--ws-path", ws_url, "--audio-path", audio_url, "--monitor-interval", "0.5"]
    env = {**os.environ, "CHATSWARM_ENV_FILE": os.devnull}
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watched, peak = psutil.Process(process.pid), 0
    while process.poll() is None and time.monotonic() - started < duration_s + 120:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    stderr = process.communicate(timeout=10)[1].decode(errors="replace")
    wall_s = time.monotonic() - started
    summary = json.loads((report / "summary.json").read_text())
    with (report / "requests.csv").open() as file:
        control = [float(row["response_time_ms"]) for row in csv.DictReader(file) if row["type"] == "POST"]
    failures = sorted({item["error"] for item in summary["failures"] if not item["request"].startswith("POST")})
    return {
        "name": name,
        "wall_s": wall_s,
        "peak_mb": peak / 2**20,
        "monitor_peak_mb": summary["resources"]["processes"]["load generator"]["memory_mb"]["peak"],
        "control_p50_ms": statistics.median(control) if control else float("nan"),
        "control_count": len(control),
        "failures": ", ".join(failures) or "none",
        "traceback": "Traceback" in stderr,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    duration_s = parser.parse_args().duration
    server = HostileWebSocketServer()
    rows = []
    with DemobotProcess(*DEMOBOT) as bot, tempfile.TemporaryDirectory() as folder:
        demobot_ws = bot.url.replace("http://", "ws://")
        cases = [
            ("clean", f"{demobot_ws}/ws/chat", f"{demobot_ws}/ws/audio"),
            ("ping flood", f"{server.ws_url}/ping-flood", f"{server.ws_url}/ping-flood"),
            ("600 MB frame", f"{server.ws_url}/huge-frame", f"{server.ws_url}/huge-frame"),
        ]
        for name, ws_url, audio_url in cases:
            rows.append(run(name, ws_url, audio_url, bot, duration_s, Path(folder)))
            print(f"{name}: done in {rows[-1]['wall_s']:.1f} s", file=sys.stderr)
    server.close()
    clean_p50 = rows[0]["control_p50_ms"]
    print(f"`-t {duration_s}s`, {' '.join(USERS)}\n")
    print("| run | wall time | peak RSS (psutil / monitor) | RestChatUser p50 (vs clean) | answers | WS failures |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        ratio = row["control_p50_ms"] / clean_p50
        print(
            f"| {row['name']} | {row['wall_s']:.1f} s | {row['peak_mb']:.0f} / {row['monitor_peak_mb']:.0f} MB "
            f"| {row['control_p50_ms']:.1f} ms ({ratio:.2f}x) | {row['control_count']} | {row['failures']}"
            f"{' (traceback!)' if row['traceback'] else ''} |"
        )


if __name__ == "__main__":
    main()
