"""Benchmark: client memory per idle plenary connection, and WebSocket messages per second per client core.

    .venv/bin/python bench/ws_bench.py [--idle 5000] [--duration 20]

demobot runs pinned to one core and Locust (one process) to the other. Part 1 (memory): PlenaryUsers
that join and then stay idle (one message each, --chat-interval 3600), at 100 users and at --idle users;
the client memory per connection is the growth of Locust's RSS divided by the extra users. Part 2
(fan-out): N users in one room each sending once a second, so the client receives N² broadcasts a
second; messages/s per client core = broadcasts received / Locust's CPU seconds. Part 3 (chat): replies
per second to WebSocketChatUsers with zero server delays. Prints Markdown tables for docs/PERFORMANCE.md.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pinned_runs import SATURATED_CPU_PERCENT, demobot, pinned_locust  # noqa: E402

IDLE_BASELINE_USERS = 100
SPAWN_RATE = 100
"""Joins per second in the memory runs (faster joins leave a larger transient peak of waiting greenlets)."""
FANOUT_LEVELS = (50, 100, 150)
CHAT_USERS = 64


def locust(args: list[str], report: Path, duration_s: int, rss_at_s: float | None = None) -> dict:
    """Run Locust pinned to the client core: its summary, its RSS at ``rss_at_s`` (memory runs) or its
    CPU seconds over the run less the first 3 s and the last second (throughput runs)."""
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "-t", f"{duration_s}s"]
    command += ["--stop-timeout", "2", "--report-dir", str(report), "--only-summary", *args]
    process = pinned_locust(command)
    watched = psutil.Process(process.pid)
    result: dict = {}
    if rss_at_s is not None:
        time.sleep(rss_at_s)
        result["rss"] = watched.memory_info().rss
    else:
        time.sleep(3)
        cpu_before, start = sum(watched.cpu_times()[:2]), time.monotonic()
        time.sleep(duration_s - 4)
        result["cpu_s"] = sum(watched.cpu_times()[:2]) - cpu_before
        result["window_s"] = time.monotonic() - start
    stderr = process.communicate(timeout=duration_s + 120)[1]
    result["summary"] = json.loads((report / "summary.json").read_text())
    result["cpu_warning"] = "CPU usage above" in stderr
    return result


def idle_memory(users: int, work: Path) -> dict:
    """Locust's RSS with ``users`` idle plenary connections (spread over rooms of 50)."""
    with demobot() as bot:
        rooms = max(1, users // 50)
        args = ["--host", bot.url, "--user-mix", "PlenaryUser", "-u", str(users), "-r", str(SPAWN_RATE)]
        args += ["--chat-interval", "3600", "--rooms", str(rooms), "--request-timeout", "60"]
        spawn_s = users / SPAWN_RATE
        result = locust(args, work / f"idle-{users}", int(spawn_s + 25), rss_at_s=spawn_s + 15)
    plenary = result["summary"]["plenary"]
    return {"users": users, "joins": plenary["joins"], "rss": result["rss"], "summary": result["summary"]}


def fanout(users: int, duration_s: int, work: Path) -> dict:
    """Broadcasts received per client CPU second with ``users`` in one room, each sending once a second."""
    with demobot() as bot:
        server = psutil.Process(bot.pid)
        server_before = sum(server.cpu_times()[:2])
        args = ["--host", bot.url, "--user-mix", "PlenaryUser", "-u", str(users), "-r", str(users)]
        args += ["--chat-interval", "1", "--drain-time", "1"]
        result = locust(args, work / f"fanout-{users}", duration_s)
        server_cpu = sum(server.cpu_times()[:2]) - server_before
    summary = result["summary"]
    rows = summary["requests"]
    received = sum(rows[key]["count"] for key in ("FANOUT echo", "FANOUT peers") if key in rows)
    rate = received / summary["duration_s"]
    client_cpu = result["cpu_s"] / result["window_s"]
    return {
        "users": users,
        "received_per_s": rate,
        "per_core": rate / client_cpu if client_cpu else 0.0,
        "client_cpu_percent": 100 * client_cpu,
        "server_cpu_percent": 100 * server_cpu / summary["duration_s"],
        "p50": rows["FANOUT peers"]["p50_ms"],
        "p99": rows["FANOUT peers"]["p99_ms"],
        "completeness": summary["plenary"]["completeness"],
        "cpu_warning": result["cpu_warning"],
    }


def chat(duration_s: int, work: Path) -> dict:
    """Whole replies per second to WebSocketChatUsers with zero server delays."""
    with demobot("--ttft-ms", "0", "--token-ms", "0", "--answer-tokens", "32", "--slots", "1000") as bot:
        args = ["--host", bot.url, "--user-mix", "WebSocketChatUser", "-u", str(CHAT_USERS), "-r", "64"]
        args += ["--think-time", "0"]
        result = locust(args, work / "chat", duration_s)
    summary = result["summary"]
    replies = sum(row["count"] for key, row in summary["requests"].items() if key.startswith("WSR"))
    rate = replies / summary["duration_s"]
    client_cpu = result["cpu_s"] / result["window_s"]
    return {
        "replies_per_s": rate,
        "per_core": rate / client_cpu if client_cpu else 0.0,
        "client_cpu_percent": 100 * client_cpu,
        "failures": summary["totals"]["failures"],
        "cpu_warning": result["cpu_warning"],
    }


def memory_table(idle: int, work: Path) -> None:
    base, full = idle_memory(IDLE_BASELINE_USERS, work), idle_memory(idle, work)
    per_connection = (full["rss"] - base["rss"]) / (full["users"] - base["users"])
    print("| idle connections | joined | Locust RSS (MB) |")
    print("|---|---|---|")
    for run in (base, full):
        print(f"| {run['users']} | {run['joins']} | {run['rss'] / 2**20:.1f} |")
    print(f"\nClient memory per idle plenary connection: {per_connection / 1024:.1f} KB\n", flush=True)


def saturated(result: dict) -> str:
    return "**yes**" if result["cpu_warning"] or result["client_cpu_percent"] >= SATURATED_CPU_PERCENT else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=5000, help="idle connections in the memory run (0: skip it)")
    parser.add_argument("--duration", type=int, default=20, help="seconds per throughput run")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if options.idle:
            memory_table(options.idle, work)
        print(
            "| users in the room | broadcasts received/s | per client core | client CPU | server CPU "
            "| fan-out p50 / p99 (ms) | completeness | generator saturated |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for users in FANOUT_LEVELS:
            r = fanout(users, options.duration, work)
            print(
                f"| {r['users']} | {r['received_per_s']:.0f} | {r['per_core']:.0f} | {r['client_cpu_percent']:.0f}% "
                f"| {r['server_cpu_percent']:.0f}% | {r['p50']:.0f} / {r['p99']:.0f} | {r['completeness']} "
                f"| {saturated(r)} |",
                flush=True,
            )
        r = chat(options.duration, work)
        print("\n| client | replies/s | per client core | client CPU | failures | generator saturated |")
        print("|---|---|---|---|---|---|")
        print(
            f"| WebSocketChatUser, {CHAT_USERS} users | {r['replies_per_s']:.0f} | {r['per_core']:.0f} "
            f"| {r['client_cpu_percent']:.0f}% | {r['failures']} | {saturated(r)} |"
        )


if __name__ == "__main__":
    main()
