"""Benchmark: how accurate and how fast StreamingChatUser is, against demobot's own timing log.

    .venv/bin/python bench/stream_bench.py [--duration 15]

demobot runs pinned to one core and Locust to the other. Part 1 (accuracy): with a fixed TTFT of 50 ms
and 10 ms between tokens, at 1, 100 and 500 concurrent streams, it compares the TTFT the user reports
with the true one from demobot's timing log (first token written - request received). Part 2
(throughput): with zero server delays, the most completed streams per second one client core drives,
next to a minimal FastHttpUser that reads lines (bench/baseline_locustfile.py) measured in the same
run. Prints Markdown tables for docs/PERFORMANCE.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demobot.launcher import DemobotProcess  # noqa: E402

CLIENT_CORE, SERVER_CORE = 0, 1
ACCURACY_LEVELS = (1, 100, 500)
THROUGHPUT_CONCURRENCY = 64
ANSWER_TOKENS = 32


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


def demobot(*flags: str) -> DemobotProcess:
    bot = DemobotProcess(*flags).start()
    os.sched_setaffinity(bot.pid, {SERVER_CORE})
    return bot


def accuracy(concurrency: int, duration_s: int, work: Path) -> dict:
    """Reported TTFT against the true TTFT at one concurrency."""
    log = work / f"timings-{concurrency}.jsonl"
    report = work / f"accuracy-{concurrency}"
    flags = ("--ttft-ms", "50", "--token-ms", "10", "--answer-tokens", str(ANSWER_TOKENS), "--slots", "1000")
    with demobot(*flags, "--queue-limit", "1000", "--timing-log", str(log)) as bot:
        args = ["-f", "locustfile.py", "--host", bot.url, "--user-mix", "StreamingChatUser", "-u", str(concurrency)]
        args += ["-r", str(min(concurrency, 100)), "--think-time", "0", "--report-dir", str(report)]
        result, cpu = run_locust(args, report, duration_s)
    summary = json.loads((report / "summary.json").read_text())
    truth = [json.loads(line) for line in log.read_text().splitlines()]
    by_id = {t["id"]: t for t in truth}
    send_delays, receive_delays = [], []
    with (report / "requests.csv").open() as file:
        for row in csv.DictReader(file):
            server = by_id.get(row["request_id"])
            if server and server["first_token"] and row["ttft_ms"]:
                sent = datetime.fromisoformat(row["timestamp"]).timestamp()
                send_delays.append((server["received"] - sent) * 1000)
                receive_delays.append((sent + float(row["ttft_ms"]) / 1000 - server["first_token"]) * 1000)
    true_ttft = [(t["first_token"] - t["received"]) * 1000 for t in truth if t["status"] == 200]
    llm = summary["llm"]
    return {
        "concurrency": concurrency,
        "requests": llm["requests"],
        "true_p50": statistics.median(true_ttft),
        "true_p99": percentile(true_ttft, 99),
        "p50": llm["ttft_ms"]["p50"],
        "p99": llm["ttft_ms"]["p99"],
        "itl_p50": llm["itl_ms"]["p50"],
        "send_p50": statistics.median(send_delays),
        "receive_p50": statistics.median(receive_delays),
        "cpu_percent": 100 * cpu / summary["duration_s"],
        "cpu_warning": "CPU usage above" in result.stderr,
        "loop_lag_p99": summary["generator"]["loop_lag_ms"]["p99"],
        "trustworthy": summary["generator"]["trustworthy"],
    }


def throughput(locustfile: str, user: str, duration_s: int, work: Path) -> dict:
    """Completed streams per second with zero server delays, and the CPU each side used."""
    report = work / f"throughput-{user}"
    with demobot("--ttft-ms", "0", "--token-ms", "0", "--answer-tokens", str(ANSWER_TOKENS)) as bot:
        server = psutil.Process(bot.pid)
        server_before = sum(server.cpu_times()[:2])
        args = ["-f", locustfile, "--host", bot.url, "-u", str(THROUGHPUT_CONCURRENCY), "-r", "64"]
        if locustfile == "locustfile.py":
            args += ["--user-mix", user, "--think-time", "0", "--report-dir", str(report)]
        result, cpu = run_locust(args, report, duration_s)
        server_cpu = sum(server.cpu_times()[:2]) - server_before
    rows = (report / "locust_stats.csv").read_text().splitlines()
    header = rows[0].split(",")
    total = dict(zip(header, rows[-1].split(","), strict=False))
    row_type = "E2E" if locustfile == "locustfile.py" else "POST"
    completed = sum(
        int(dict(zip(header, line.split(","), strict=False))["Request Count"])
        for line in rows[1:-1]
        if line.startswith(row_type)
    )
    wall = duration_s
    return {
        "client": user,
        "streams_per_s": completed / wall,
        "client_cpu_percent": 100 * cpu / wall,
        "server_cpu_percent": 100 * server_cpu / wall,
        "failures": int(total["Failure Count"]),
        "cpu_warning": "CPU usage above" in result.stderr,
    }


SATURATED_CPU_PERCENT = 90
"""Above this much of its core the load generator's timings are not trustworthy (Locust's own threshold)."""


def saturated(result: dict) -> str:
    """Whether the load generator was the bottleneck: Locust warned, or its core was nearly full."""
    cpu = result.get("cpu_percent", result.get("client_cpu_percent", 0))
    return "**yes**" if result["cpu_warning"] or cpu >= SATURATED_CPU_PERCENT else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per run")
    parser.add_argument("--levels", default=",".join(map(str, ACCURACY_LEVELS)), help="concurrent streams to try")
    parser.add_argument("--accuracy-only", action="store_true", help="skip the throughput part")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        print(
            "| concurrent streams | answers | true TTFT p50 / p99 (ms) | reported TTFT p50 / p99 (ms) "
            "| error p50 / p99 (ms) | of which send / receive p50 (ms) | ITL p50 (ms) | client CPU "
            "| generator saturated | loop lag p99 (ms) | trustworthy |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for level in (int(text) for text in options.levels.split(",")):
            r = accuracy(level, options.duration, work)
            error_p50, error_p99 = r["p50"] - r["true_p50"], r["p99"] - r["true_p99"]
            print(
                f"| {r['concurrency']} | {r['requests']} | {r['true_p50']:.1f} / {r['true_p99']:.1f} "
                f"| {r['p50']:.1f} / {r['p99']:.1f} | {error_p50:+.1f} / {error_p99:+.1f} "
                f"| {r['send_p50']:.1f} / {r['receive_p50']:.1f} "
                f"| {r['itl_p50']:.1f} | {r['cpu_percent']:.0f}% | {saturated(r)} "
                f"| {r['loop_lag_p99']:.1f} | {'yes' if r['trustworthy'] else '**no**'} |",
                flush=True,
            )
        if options.accuracy_only:
            return
        print()
        print("| client | completed streams/s | client CPU | server CPU | failures | generator saturated |")
        print("|---|---|---|---|---|---|")
        results = [
            throughput("bench/baseline_locustfile.py", "LineReadingUser", options.duration, work),
            throughput("locustfile.py", "StreamingChatUser", options.duration, work),
        ]
        for r in results:
            print(
                f"| {r['client']} | {r['streams_per_s']:.0f} | {r['client_cpu_percent']:.0f}% "
                f"| {r['server_cpu_percent']:.0f}% | {r['failures']} | {saturated(r)} |",
                flush=True,
            )
        ratio = results[1]["streams_per_s"] / results[0]["streams_per_s"]
        print(f"\nStreamingChatUser reached {ratio:.0%} of the baseline's completed streams/s.")


if __name__ == "__main__":
    main()
