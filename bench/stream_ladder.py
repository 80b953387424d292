"""The ladder of issue 20: StreamingChatUser beside a bare reader and a raw-socket floor, level by level.

At each level the three clients run one after the other, the order rotating, each against a fresh server (demobot
or bench/sse_server.py, pinned apart from Locust). All are judged against the server's timing log the same way: TTFT
p50 and p99 of the steady state's answers, matched by request id, minus the true ones; and the load the server saw
(streams in flight, by Little's law from its log) against the streams asked. A client's knee is the most streams
with a TTFT p50 error of at most KNEE_ERROR_MS; its knee with the load held also needs LOAD_HELD of the streams in
flight. A run the rest of the shared machine disturbed is run again.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
from datetime import datetime
from pathlib import Path

from bench_servers import BenchServer, send_lateness
from pinned_runs import ANSWER_TOKENS, DEMOBOT_QUEUE, OTHER_WORK_LIMIT_PERCENT, SERVER_CORE, percentile, run_sampled

from core.speedups import SPEEDUPS_VARIABLE
from users.common.arrival_clock import CLOCK_VARIABLE

STREAMING_CHAT_USER = ["-f", "locustfile.py", "--user-mix", "StreamingChatUser", "--think-time", "0"]
LADDER_CLIENTS = {
    "raw socket": ["-f", "bench/baseline_locustfile.py", "RawSocketUser"],
    "bare reader": ["-f", "bench/baseline_locustfile.py", "BareTimingUser"],
    "StreamingChatUser": STREAMING_CHAT_USER,
    "StreamingChatUser (clock at read)": STREAMING_CHAT_USER,
    "StreamingChatUser (Python)": STREAMING_CHAT_USER,
}
"""The clients a ladder can climb; the last two are StreamingChatUser with the kernel's arrival stamps off
(users/common/arrival_clock.py) and without its compiled steps (core/speedups.py), to show what they change."""
DEFAULT_CLIENTS = ("raw socket", "bare reader", "StreamingChatUser")
LADDER_ATTEMPTS = 2
STEADY_AFTER_SPAWN_S = 1.0
"""Answers count from this long after the last user was spawned."""
KNEE_ERROR_MS = 2.0
"""A client measures honestly at a level while its TTFT p50 reads at most this much above the server's log."""
LOAD_HELD = 0.95
"""... and holds the load asked while the server sees at least this share of the streams in flight."""


def ladder_run(client: str, streams: int, token_ms: float, duration_s: int, work: Path, server: BenchServer) -> dict:
    """One client at one level against a fresh server: its TTFT error against the timing log, the load the server saw,
    CPU and loop lag."""
    name = f"{client.split()[0]}-{streams}-{len(list(work.iterdir()))}"
    log, report, answers_log = work / f"{name}.jsonl", work / name, work / f"{name}-answers.json"
    report.mkdir()
    flags = ("--ttft-ms", "50", "--token-ms", str(token_ms), "--answer-tokens", str(ANSWER_TOKENS))
    with server.pinned(SERVER_CORE, *flags, "--timing-log", str(log), demobot_only=DEMOBOT_QUEUE) as bot:
        args = [*LADDER_CLIENTS[client], "--host", bot.url, "-u", str(streams), "-r", str(min(streams, 100))]
        if client.startswith("StreamingChatUser"):
            args += ["--report-dir", str(report)]
        os.environ["BARE_READER_LOG"] = str(answers_log)
        os.environ[CLOCK_VARIABLE] = "read" if client.endswith("(clock at read)") else "kernel"
        os.environ[SPEEDUPS_VARIABLE] = "off" if client.endswith("(Python)") else "on"
        stderr, cpu = run_sampled(args, report, duration_s, bot.pid)
    lateness = send_lateness(bot)
    answers, loop_lag_p99 = client_answers(client, report, answers_log)
    truth = {t["id"]: t for t in map(json.loads, log.read_text().splitlines()) if t["status"] == 200 and t["finished"]}
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
    answers_per_s = len(matched) / (duration_s - (steady - min(started for _, started, _ in answers)))
    server_e2e_s = statistics.fmean(t["finished"] - t["received"] for _, _, t in matched)
    return {
        "client": client,
        "streams": streams,
        "answers": len(matched),
        "answers_per_s": answers_per_s,
        "load_held": answers_per_s * server_e2e_s / streams,  # streams in flight at the server (Little's law)
        "error_p50": statistics.median(reported) - statistics.median(true),
        "error_p99": percentile(reported, 99) - percentile(true, 99),
        "send_p50": statistics.median(send),
        **cpu,
        "cpu_warning": "CPU usage above" in stderr,
        "loop_lag_p99": loop_lag_p99,
        "server_late": f" | {lateness[0]:.2f} / {lateness[1]:.2f}" if lateness else "",
    }


def client_answers(client: str, report: Path, answers_log: Path) -> tuple[list[tuple[str, float, float]], float]:
    """The client's answers (request id, start epoch, reported TTFT ms) and its loop lag p99 (ms)."""
    if not client.startswith("StreamingChatUser"):
        bare = json.loads(answers_log.read_text())
        return [tuple(answer) for answer in bare["answers"]], percentile(bare["loop_lag_ms"], 99)
    with (report / "requests.csv").open() as file:
        rows = [r for r in csv.DictReader(file) if r["type"] == "E2E" and r["ttft_ms"] and r["status"] == "ok"]
    answers = [(r["request_id"], datetime.fromisoformat(r["timestamp"]).timestamp(), float(r["ttft_ms"])) for r in rows]
    return answers, json.loads((report / "summary.json").read_text())["generator"]["loop_lag_ms"]["p99"]


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


def knee(results: list[dict], load_held: float = 0.0) -> int:
    """The most streams at which the TTFT p50 error stayed within KNEE_ERROR_MS and the server saw at least
    ``load_held`` of the streams in flight (0: not even the lowest level)."""
    honest = (r["streams"] for r in results if r["error_p50"] <= KNEE_ERROR_MS and r["load_held"] >= load_held)
    return max(honest, default=0)


def ladder(
    levels: list[int],
    token_ms: float,
    duration_s: int,
    rounds: int,
    work: Path,
    server: BenchServer,
    clients: tuple[str, ...] = DEFAULT_CLIENTS,
) -> None:
    """Every client at every level, side by side in turn (the order rotates); prints the table and the knees. The
    bare reader is always among the clients: the others are compared with it."""
    clients = ("bare reader", *(client for client in clients if client != "bare reader"))
    print(
        "| round | streams | client | answers/s | load held | TTFT error p50 / p99 (ms) "
        "| vs bare reader p50 / p99 (ms) | of which send p50 (ms) | client CPU | CPU per answer (ms) "
        "| client waiting for its core | server CPU | other work on the machine | loop lag p99 (ms) |"
        + " server send late p50 / p99 (ms) |"
        * (server.kind == "fast")
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * (server.kind == "fast"))
    results: dict[str, dict[int, list[dict]]] = {client: {level: [] for level in levels} for client in clients}
    for round_number in range(rounds):
        for index, streams in enumerate(levels):
            shift = (index + round_number) % len(clients)
            order = [*clients[shift:], *clients[:shift]]
            pair = {client: clean_ladder_run(client, streams, token_ms, duration_s, work, server) for client in order}
            for client in clients:
                r, bare = pair[client], pair["bare reader"]
                results[client][streams].append(r)
                tries = "" if r["attempts"] == 1 else f" ({r['attempts']} tries)"
                print(
                    f"| {round_number + 1} | {streams} | {client} | {r['answers_per_s']:.0f} | {r['load_held']:.0%} "
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
        per_round = [[by_level[level][n] for level in levels] for n in range(rounds)]
        medians = [
            {
                "streams": level,
                "error_p50": statistics.median(r["error_p50"] for r in by_level[level]),
                "load_held": statistics.median(r["load_held"] for r in by_level[level]),
            }
            for level in levels
        ]
        print(
            f"{client}: knee per round {[knee(r) for r in per_round]}, with the load held "
            f"{[knee(r, LOAD_HELD) for r in per_round]}; on the medians of each level: {knee(medians)} streams, "
            f"{knee(medians, LOAD_HELD)} with the load held"
        )
