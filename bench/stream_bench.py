"""Benchmark: how accurate and how fast StreamingChatUser is, against demobot's own timing log.

    .venv/bin/python bench/stream_bench.py [--duration 15]

demobot runs pinned to one core and Locust to the other. Part 1 (accuracy): with a fixed TTFT of 50 ms
and 10 ms between tokens, at 1, 100 and 500 concurrent streams, it compares the TTFT the user reports
with the true one from demobot's timing log (first token written - request received). Part 2
(throughput): with zero server delays, the most completed streams per second one client core drives,
next to a minimal FastHttpUser that reads lines (bench/baseline_locustfile.py) measured in the same
run. Prints Markdown tables for docs/PERFORMANCE.md. Not part of the test suite.

    .venv/bin/python bench/stream_bench.py --ladder --server fast --levels 300,450,600,900 --duration 20

The ladder of issue 20 (bench/stream_ladder.py): StreamingChatUser beside a bare reader and a raw-socket floor.
``--server fast`` puts bench/sse_server.py (same wire format and timing log, far less CPU per event) in demobot's
place, so a client's knee can show past demobot's; its send lateness is printed in one more column.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_servers import SERVERS, BenchServer
from pinned_runs import (
    ANSWER_TOKENS,
    DEMOBOT_QUEUE,
    SATURATED_CPU_PERCENT,
    SERVER_CORE,
    percentile,
    run_locust,
)
from stream_ladder import DEFAULT_CLIENTS, LADDER_CLIENTS, ladder

ACCURACY_LEVELS = (1, 100, 500)
THROUGHPUT_CONCURRENCY = 64


def accuracy(concurrency: int, duration_s: int, work: Path, server: BenchServer) -> dict:
    """Reported TTFT against the true TTFT at one concurrency."""
    log = work / f"timings-{concurrency}.jsonl"
    report = work / f"accuracy-{concurrency}"
    flags = ("--ttft-ms", "50", "--token-ms", "10", "--answer-tokens", str(ANSWER_TOKENS), "--timing-log", str(log))
    with server.pinned(SERVER_CORE, *flags, demobot_only=DEMOBOT_QUEUE) as bot:
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


def throughput(locustfile: str, user: str, duration_s: int, work: Path, server: BenchServer) -> dict:
    """Completed streams per second with zero server delays, and the CPU each side used."""
    report = work / f"throughput-{user}"
    flags = ("--ttft-ms", "0", "--token-ms", "0", "--answer-tokens", str(ANSWER_TOKENS))
    with server.pinned(SERVER_CORE, *flags) as bot:
        process = psutil.Process(bot.pid)
        server_before = sum(process.cpu_times()[:2])
        args = ["-f", locustfile, "--host", bot.url, "-u", str(THROUGHPUT_CONCURRENCY), "-r", "64"]
        if locustfile == "locustfile.py":
            args += ["--user-mix", user, "--think-time", "0", "--report-dir", str(report)]
        result, cpu = run_locust(args, report, duration_s)
        server_cpu = sum(process.cpu_times()[:2]) - server_before
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


def saturated(result: dict) -> str:
    """Whether the load generator was the bottleneck: Locust warned, or its core was nearly full."""
    cpu = result.get("cpu_percent", result.get("client_cpu_percent", 0))
    return "**yes**" if result["cpu_warning"] or cpu >= SATURATED_CPU_PERCENT else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per run")
    parser.add_argument("--levels", default=",".join(map(str, ACCURACY_LEVELS)), help="concurrent streams to try")
    parser.add_argument("--accuracy-only", action="store_true", help="skip the throughput part")
    parser.add_argument("--ladder", action="store_true", help="StreamingChatUser beside the bare reader (issue 20)")
    parser.add_argument("--token-ms", type=float, default=10.0, help="ladder: demobot's time between tokens")
    parser.add_argument("--rounds", type=int, default=1, help="ladder: how many times to climb it")
    parser.add_argument("--server", choices=SERVERS, default="demobot", help="demobot, or bench/sse_server.py (fast)")
    parser.add_argument(
        "--clients",
        default=",".join(DEFAULT_CLIENTS),
        help=f"ladder: which clients, comma-separated, of: {'; '.join(LADDER_CLIENTS)}",
    )
    parser.add_argument("--quantum-ms", type=float, help="fast server: send tokens due this close together (0-10)")
    options = parser.parse_args()
    server = BenchServer(options.server, options.quantum_ms)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if options.ladder:
            levels = [int(text) for text in options.levels.split(",")]
            clients = tuple(name.strip() for name in options.clients.split(","))
            if unknown := set(clients) - set(LADDER_CLIENTS):
                parser.error(f"--clients: unknown {sorted(unknown)}")
            ladder(levels, options.token_ms, options.duration, options.rounds, work, server, clients)
            return
        print(
            "| concurrent streams | answers | true TTFT p50 / p99 (ms) | reported TTFT p50 / p99 (ms) "
            "| error p50 / p99 (ms) | of which send / receive p50 (ms) | ITL p50 (ms) | client CPU "
            "| generator saturated | loop lag p99 (ms) | trustworthy |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for level in (int(text) for text in options.levels.split(",")):
            r = accuracy(level, options.duration, work, server)
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
            throughput("bench/baseline_locustfile.py", "LineReadingUser", options.duration, work, server),
            throughput("locustfile.py", "StreamingChatUser", options.duration, work, server),
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
