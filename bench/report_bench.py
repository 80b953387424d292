"""Benchmark: how long index.html takes for a big run (default 1,000,000 requests in requests.csv).

    .venv/bin/python bench/report_bench.py [--requests 1000000]

Writes a synthetic run folder (summary.json, an hour of stats history, requests.csv, resources.csv) to
a temporary directory, then times report.page.build_report on it. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugins.output.request_log import COLUMNS  # noqa: E402
from report.page import build_report  # noqa: E402


def write_run(folder: Path, requests: int, seed: int = 1) -> None:
    """A run folder shaped like a real one-hour streaming test."""
    rng = random.Random(seed)
    summary = {
        "test_type": "bench",
        "host": "http://127.0.0.1:8080",
        "started": "2026-11-21T10:00:00+00:00",
        "duration_s": 3600.0,
        "requests": {"E2E chat:common": {"count": requests, "failures": 0, "p50_ms": 400, "p95_ms": 600}},
        "totals": {"count": requests, "failures": 0, "p50_ms": 400, "p95_ms": 600, "rps": requests / 3600},
        "failures": [],
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    with (folder / "stats_stats_history.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", "50%", "95%"])
        for second in range(3600):
            writer.writerow([1_800_000_000 + second, 100 + second // 60, "", "Aggregated", 277.7, 0, 400, 600])
    with (folder / "requests.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for index in range(requests):
            ttft = rng.gauss(120, 20)
            stamp = f"2026-11-21T10:00:{index % 60:02d}.000000+00:00"
            itl = f"{rng.gauss(9, 1):.2f}"
            writer.writerow((stamp, f"r{index}", index % 100, "E2E", "chat:common", "ok", "400.00", f"{ttft:.2f}",
                             "400.00", 32, itl, ""))  # fmt: skip
    with (folder / "resources.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["time", "label", "pid", "cpu_percent", "memory_mb", "threads", "open_files", "net_sent_mb",
                         "net_recv_mb"])  # fmt: skip
        for second in range(0, 3600, 2):
            writer.writerow([1_800_000_000 + second, "load generator", 1, 55.0, 120.0, 3, 150, 0, 0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        started = time.perf_counter()
        write_run(folder, options.requests)
        size_mb = (folder / "requests.csv").stat().st_size / 1e6
        print(f"wrote the run folder in {time.perf_counter() - started:.1f} s (requests.csv {size_mb:.0f} MB)")
        started = time.perf_counter()
        page = build_report(folder)
        elapsed = time.perf_counter() - started
        print(
            f"built {page.name} for {options.requests:,} requests in {elapsed:.1f} s ({page.stat().st_size // 1000} kB)"
        )


if __name__ == "__main__":
    main()
