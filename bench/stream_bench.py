"""Benchmark: how accurate and how fast StreamingChatUser is, against demobot's own timing log.

    .venv/bin/python bench/stream_bench.py [--duration 15]

demobot runs pinned to one core and Locust to the other. Part 1 (accuracy): with a fixed TTFT of 50 ms
and 10 ms between tokens, at 1, 100 and 500 concurrent streams, it compares the TTFT the user reports
with the true one from demobot's timing log (first token written - request received). Part 2
(throughput): with zero server delays, the most completed streams per second one client core drives,
next to a minimal FastHttpUser that reads lines (bench/baseline_locustfile.py) measured in the same
run. Prints Markdown tables for docs/PERFORMANCE.md. Not part of the test suite.

    .venv/bin/python bench/stream_bench.py --ladder --levels 50,100,200,300,450,600 --duration 10 --rounds 2

The ladder (issue 20): at each level three clients run one after the other, the order rotating, each against a
fresh demobot: the raw-socket floor (RawSocketUser), the bare reader (BareTimingUser: reads lines, times TTFT and
E2E only) and StreamingChatUser. All are judged against demobot's timing log the same way (TTFT p50 and p99 of the
steady state's answers, matched by request id, minus the true ones); each client's knee is the most streams with a
TTFT p50 error of at most KNEE_ERROR_MS. A run the rest of the shared machine disturbed is run again.
``--server fast`` puts bench/sse_server.py (same wire format and timing log, far less CPU per event) in demobot's
place, so a client's knee can show past demobot's; its send lateness is printed in one more column.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio_bench import OTHER_WORK_LIMIT_PERCENT, busy_cpu_s, scheduler_times  # noqa: E402
from bench_servers import SERVERS, BenchServer, send_lateness  # noqa: E402

CLIENT_CORE, SERVER_CORE = 0, 1
ACCURACY_LEVELS = (1, 100, 500)
THROUGHPUT_CONCURRENCY = 64
ANSWER_TOKENS = 32
DEMOBOT_QUEUE = ("--slots", "1000", "--queue-limit", "1000")


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


LADDER_CLIENTS = {
    "raw socket": ["-f", "bench/baseline_locustfile.py", "RawSocketUser"],
    "bare reader": ["-f", "bench/baseline_locustfile.py", "BareTimingUser"],
    "StreamingChatUser": ["-f", "locustfile.py", "--user-mix", "StreamingChatUser", "--think-time", "0"],
}
LADDER_ATTEMPTS = 2
STEADY_AFTER_SPAWN_S = 1.0
"""Answers count from this long after the last user was spawned."""
KNEE_ERROR_MS = 2.0
"""A client measures honestly at a level while its TTFT p50 reads at most this much above the server's log."""


def ladder_run(client: str, streams: int, token_ms: float, duration_s: int, work: Path, server: BenchServer) -> dict:
    """One client at one level against a fresh server: its TTFT error against the timing log, CPU and loop lag."""
    name = f"{client.split()[0]}-{streams}-{len(list(work.iterdir()))}"
    log, report, answers_log = work / f"{name}.jsonl", work / name, work / f"{name}-answers.json"
    report.mkdir()
    flags = ("--ttft-ms", "50", "--token-ms", str(token_ms), "--answer-tokens", str(ANSWER_TOKENS))
    with server.pinned(SERVER_CORE, *flags, "--timing-log", str(log), demobot_only=DEMOBOT_QUEUE) as bot:
        args = [*LADDER_CLIENTS[client], "--host", bot.url, "-u", str(streams), "-r", str(min(streams, 100))]
        if client == "StreamingChatUser":
            args += ["--report-dir", str(report)]
        os.environ["BARE_READER_LOG"] = str(answers_log)
        stderr, cpu = run_sampled(args, report, duration_s, bot.pid)
    lateness = send_lateness(bot)
    if client == "StreamingChatUser":
        with (report / "requests.csv").open() as file:
            rows = [r for r in csv.DictReader(file) if r["type"] == "E2E" and r["ttft_ms"] and r["status"] == "ok"]
        answers = [
            (r["request_id"], datetime.fromisoformat(r["timestamp"]).timestamp(), float(r["ttft_ms"])) for r in rows
        ]
        loop_lag_p99 = json.loads((report / "summary.json").read_text())["generator"]["loop_lag_ms"]["p99"]
    else:
        bare = json.loads(answers_log.read_text())
        answers = bare["answers"]
        loop_lag_p99 = percentile(bare["loop_lag_ms"], 99)
    truth = {}
    for line in log.read_text().splitlines():
        t = json.loads(line)
        if t["status"] == 200 and t["first_token"]:
            truth[t["id"]] = t
    # Steady state only: while Locust spawns a batch of users its loop is busy for milliseconds (more for users
    # that carry more), which is the ramp's error, not the level's.
    steady = min(started for _, started, _ in answers) + streams / min(streams, 100) + STEADY_AFTER_SPAWN_S
    matched = [
        (started, ttft, truth[request_id])
        for request_id, started, ttft in answers
        if request_id in truth and started >= steady
    ]
    reported = [ttft for _, ttft, _ in matched]
    true = [(t["first_token"] - t["received"]) * 1000 for _, _, t in matched]
    send = [(t["received"] - started) * 1000 for started, _, t in matched]
    return {
        "client": client,
        "streams": streams,
        "answers": len(matched),
        "answers_per_s": len(matched) / (duration_s - (steady - min(started for _, started, _ in answers))),
        "error_p50": statistics.median(reported) - statistics.median(true),
        "error_p99": percentile(reported, 99) - percentile(true, 99),
        "send_p50": statistics.median(send),
        **cpu,
        "cpu_warning": "CPU usage above" in stderr,
        "loop_lag_p99": loop_lag_p99,
        "server_late": f" | {lateness[0]:.2f} / {lateness[1]:.2f}" if lateness else "",
    }


def clean_ladder_run(
    client: str, streams: int, token_ms: float, duration_s: int, work: Path, server: BenchServer
) -> dict:
    """The run with the least other work on the machine, repeated (up to LADDER_ATTEMPTS times) while the rest of the
    machine used more than OTHER_WORK_LIMIT_PERCENT of a core: on a shared machine their CPU is our latency."""
    runs = []
    for _ in range(LADDER_ATTEMPTS):
        runs.append(ladder_run(client, streams, token_ms, duration_s, work, server))
        if runs[-1]["others_percent"] < OTHER_WORK_LIMIT_PERCENT:
            break
    best = min(runs, key=lambda r: r["others_percent"])
    return {**best, "attempts": len(runs)}


def knee(results: list[dict]) -> int:
    """The most streams at which the TTFT p50 error stayed within KNEE_ERROR_MS (0: not even the lowest level)."""
    return max((r["streams"] for r in results if r["error_p50"] <= KNEE_ERROR_MS), default=0)


def ladder(levels: list[int], token_ms: float, duration_s: int, rounds: int, work: Path, server: BenchServer) -> None:
    """Every client at every level, side by side in turn (the order rotates); prints the table and the knees."""
    print(
        "| round | streams | client | answers/s | TTFT error p50 / p99 (ms) | vs bare reader p50 / p99 (ms) "
        "| of which send p50 (ms) | client CPU | CPU per answer (ms) | client waiting for its core | server CPU "
        "| other work on the machine | loop lag p99 (ms) |"
        + " server send late p50 / p99 (ms) |"
        * (server.kind == "fast")
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * (server.kind == "fast"))
    results: dict[str, dict[int, list[dict]]] = {client: {level: [] for level in levels} for client in LADDER_CLIENTS}
    for round_number in range(rounds):
        for index, streams in enumerate(levels):
            shift = (index + round_number) % len(LADDER_CLIENTS)
            order = [*LADDER_CLIENTS][shift:] + [*LADDER_CLIENTS][:shift]
            pair = {client: clean_ladder_run(client, streams, token_ms, duration_s, work, server) for client in order}
            for client in LADDER_CLIENTS:
                r, bare = pair[client], pair["bare reader"]
                results[client][streams].append(r)
                tries = "" if r["attempts"] == 1 else f" ({r['attempts']} tries)"
                print(
                    f"| {round_number + 1} | {streams} | {client} | {r['answers_per_s']:.0f} "
                    f"| {r['error_p50']:+.2f} / {r['error_p99']:+.1f} "
                    f"| {r['error_p50'] - bare['error_p50']:+.2f} / {r['error_p99'] - bare['error_p99']:+.1f} "
                    f"| {r['send_p50']:.2f} | {r['cpu_percent']:.0f}%{' (warned)' if r['cpu_warning'] else ''} "
                    f"| {10 * r['cpu_percent'] / r['answers_per_s']:.2f} | {r['waiting_percent']:.0f}% "
                    f"| {r['server_cpu_percent']:.0f}% | {r['others_percent']:.0f}%"
                    f"{tries} | {r['loop_lag_p99']:.1f}{r['server_late']} |",
                    flush=True,
                )
    print()
    for client, by_level in results.items():
        per_round = [knee([by_level[level][n] for level in levels]) for n in range(rounds)]
        medians = [
            {"streams": level, "error_p50": statistics.median(r["error_p50"] for r in by_level[level])}
            for level in levels
        ]
        print(f"{client}: knee per round {per_round}; on the median p50 error of each level: {knee(medians)} streams")


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
    parser.add_argument("--ladder", action="store_true", help="StreamingChatUser beside the bare reader (issue 20)")
    parser.add_argument("--token-ms", type=float, default=10.0, help="ladder: demobot's time between tokens")
    parser.add_argument("--rounds", type=int, default=1, help="ladder: how many times to climb it")
    parser.add_argument("--server", choices=SERVERS, default="demobot", help="demobot, or bench/sse_server.py (fast)")
    parser.add_argument("--quantum-ms", type=float, help="fast server: send tokens due this close together (0-10)")
    options = parser.parse_args()
    server = BenchServer(options.server, options.quantum_ms)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if options.ladder:
            levels = [int(text) for text in options.levels.split(",")]
            ladder(levels, options.token_ms, options.duration, options.rounds, work, server)
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
