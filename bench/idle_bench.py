"""Benchmark: client memory per idle participant against a bare baseline, and how long periodic work holds the loop.

    .venv/bin/python bench/idle_bench.py [--levels 1000,10000] [--clients baseline,plenary,ws] [--holds]

demobot runs pinned to one core and Locust (one process) to the other, as in bench/ws_bench.py. For each client
and level, Locust runs that many idle participants (joined at 100 a second, then silent: --chat-interval or
--think-time 3600) and its resident memory is read 20 s after the last has started; the memory per participant is
the growth between the smallest and the largest level divided by the extra participants, so the process's fixed
cost drops out. The baseline is ``IdleWebSocketUser`` (bench/idle_locustfile.py): one WebSocket, one join, a
blocking ``recv()``. With --holds, two more runs trace greenlet switches (bench/idle_locustfile.py) and list the
longest time each kind of greenlet held the event loop: the largest level of idle PlenaryUsers, and a busy room
writing a large requests.csv (100 users each sending once a second: 10,000 rows a second). Prints Markdown for
docs/PERFORMANCE.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pinned_runs import CLIENT_CORE, demobot  # noqa: E402

SPAWN_RATE = 100
SETTLE_S = 20
CLIENTS = {
    "baseline": ["IdleWebSocketUser"],
    "plenary": ["--user-mix", "PlenaryUser", "--chat-interval", "3600"],
    "ws": ["--user-mix", "WebSocketChatUser", "--think-time", "3600"],
}
NAMES = {
    "baseline": "baseline: a Locust User, one websocket-client connection, join, `recv()`",
    "plenary": "PlenaryUser (signed in, joined, delivery bookkeeping)",
    "ws": "WebSocketChatUser (connected, one prompt answered)",
}


def raise_open_files() -> None:
    """10,000 connections need 10,000 descriptors in Locust and as many in demobot (children inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard == resource.RLIM_INFINITY else max(soft, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted != resource.RLIM_INFINITY and wanted < max(LEVELS) + 1000:  # per process
        sys.exit(f"open files limit {wanted} is too low for {max(LEVELS)} connections; raise `ulimit -Hn`")


def locust(bot_url: str, args: list[str], users: int, work: Path, tag: str, env: dict[str, str]) -> dict:
    """One Locust run with ``users`` participants; what bench/idle_locustfile.py found (rss, greenlets, holds)."""
    spawn_s = users / SPAWN_RATE
    out = work / f"{tag}.json"
    command = [sys.executable, "-m", "locust", "-f", "bench/idle_locustfile.py", "--headless", "--host", bot_url]
    command += ["-u", str(users), "-r", str(SPAWN_RATE), "-t", f"{int(spawn_s + SETTLE_S + 5)}s", "--stop-timeout", "2"]
    command += ["--rooms", str(max(1, users // 50)), "--request-timeout", "60", "--skip-probe", "--only-summary"]
    command += ["--max-users-per-process", str(max(users, 5000)), "--report-dir", str(work / tag), *args]
    environment = {**os.environ, "CHATSWARM_ENV_FILE": os.devnull, "BENCH_OUT": str(out)}
    environment["BENCH_RSS_AT_S"] = str(spawn_s + SETTLE_S)
    subprocess.run(
        command,
        cwd=ROOT,
        env={**environment, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CORE}),
        timeout=spawn_s + SETTLE_S + 120,
        check=False,
    )
    found = json.loads(out.read_text())
    summary = work / tag / "summary.json"
    found["summary"] = json.loads(summary.read_text()) if summary.exists() else {}
    return found


def memory(client: str, work: Path) -> list[dict]:
    runs = []
    for users in LEVELS:
        with demobot("--slots", "1000") as bot:
            runs.append({"users": users, **locust(bot.url, CLIENTS[client], users, work, f"{client}-{users}", {})})
    return runs


def holds(work: Path) -> dict[str, dict]:
    """Loop holds with the largest level of idle participants, and in a busy room with a large requests.csv."""
    traced = {"BENCH_HOLDS": "1"}
    with demobot("--slots", "1000") as bot:
        idle = locust(bot.url, CLIENTS["plenary"], max(LEVELS), work, "holds-idle", traced)
    busy_args = ["--user-mix", "PlenaryUser", "--chat-interval", "1", "--rooms", "1"]
    with demobot("--broadcast-delay-ms", "0") as bot:
        busy = locust(bot.url, busy_args, 100, work, "holds-busy", {**traced, "BENCH_RSS_AT_S": "25"})
    return {f"{max(LEVELS)} idle PlenaryUsers": idle, "100 PlenaryUsers in one room, 1 message/s each": busy}


def per_participant(runs: list[dict]) -> float:
    low, high = runs[0], runs[-1]
    return (high["rss"] - low["rss"]) / (high["users"] - low["users"]) / 1024


def main() -> None:
    global LEVELS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1000,10000", help="participants per run, comma separated")
    parser.add_argument("--clients", default="baseline,plenary,ws", help=f"of {', '.join(CLIENTS)}")
    parser.add_argument("--holds", action="store_true", help="also trace how long periodic work holds the loop")
    options = parser.parse_args()
    LEVELS = tuple(int(level) for level in options.levels.split(","))
    raise_open_files()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        results = {client: memory(client, work) for client in options.clients.split(",") if client in CLIENTS}
        if results:
            memory_table(results)
        if options.holds:
            holds_tables(work)


def memory_table(results: dict[str, list[dict]]) -> None:
    print("| client | " + " | ".join(f"RSS at {n:,} (MB)" for n in LEVELS) + " | per participant | vs baseline |")
    print("|---|" + "---|" * len(LEVELS) + "---|---|")
    base = per_participant(results["baseline"]) if "baseline" in results else None
    for client, runs in results.items():
        cost = per_participant(runs)
        sizes = " | ".join(f"{run['rss'] / 2**20:.1f} ({_joined(run)}{run['greenlets']:,} greenlets)" for run in runs)
        ratio = f"{cost / base:.2f}x" if base else "-"
        print(f"| {NAMES[client]} | {sizes} | **{cost:.1f} KB** | {ratio} |", flush=True)


def _joined(run: dict) -> str:
    joins = run["summary"].get("plenary", {}).get("joins")
    return "" if joins is None else f"{joins:,} joined, "


def holds_tables(work: Path) -> None:
    for case, found in holds(work).items():
        print(f"\n{case}, after spawning: longest holds of the event loop, by kind of greenlet\n")
        print("| greenlet | runs | longest (ms) | runs over 1 ms | time in them (ms) |")
        print("|---|---|---|---|---|")
        for kind, row in list(found["holds"].items())[:12]:
            print(f"| {kind} | {row['runs']} | {row['max_ms']} | {row['over_1ms']} | {row['over_1ms_total_ms']} |")


LEVELS: tuple[int, ...] = (1000, 10000)

if __name__ == "__main__":
    main()
