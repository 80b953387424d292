"""scripts/run_tests.py end to end: it starts the demo chatbot, runs Locust, and leaves a run folder."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, run_tests


def test_smoke_run_with_its_own_demobot(tmp_path: Path) -> None:
    report_dir = tmp_path / "smoke"
    args = ("smoke", "--duration", "5s", "--users", "2", "--report-dir", str(report_dir), "--seed", "1")  # no --
    result = run_tests(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("report.html", "stats_stats.csv", "stats_stats_history.csv", "summary.json", "run.log", "console.log"):
        assert (report_dir / name).stat().st_size > 0, name
    summary = json.loads((report_dir / "summary.json").read_text())
    assert summary["test_type"] == "smoke"
    assert summary["host"].startswith("http://127.0.0.1:")
    assert summary["totals"]["count"] > 0 and summary["totals"]["failures"] == 0
    # A progress line while it runs (every 10 s when the console is not a terminal: here the first one).
    shown = re.search(r"\[\s+\d+s/5s\] users \d+ \| requests (\d+) \| failures 0 \| ([\d.]+) req/s", result.stdout)
    assert shown and (int(shown[1]) == 0 or float(shown[2]) > 0), result.stdout  # requests made: a rate above 0
    # The one-screen summary names the rows, the totals and where the report is.
    assert "Total" in result.stdout and "p95 ms" in result.stdout
    assert str(report_dir / "index.html") in result.stdout
    # Locust's chatter goes to console.log, not to the console; the log records also to run.log.
    assert "Starting Locust" in (report_dir / "console.log").read_text()
    assert "Starting Locust" not in result.stdout
    run_log = (report_dir / "run.log").read_text()
    assert "Run folder:" in run_log and "All users spawned" in run_log  # Chatswarm's records and Locust's own
    # run_tests started demobot, so its resources were watched too.
    assert any(" (pid " in label for label in summary["resources"]["processes"])


def test_failures_give_exit_code_1(tmp_path: Path) -> None:
    result = run_tests(
        "smoke", "--duration", "3s", "--report-dir", str(tmp_path / "r"),
        "--", "--health-path", "/no-such-page", "--skip-probe",  # else the probe stops it before the load: exit 2
    )  # fmt: skip
    assert result.returncode == 1
    assert "HTTP 404 Not Found" in result.stdout


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    cases = {
        ("nope",): "unknown test type 'nope'; available: arrival, breakpoint,",
        ("smoke", "--users", "0"): "--users must be 1 or more",
        ("smoke", "--users", "many"): "invalid int value",
        ("smoke", "--host", "http://127.0.0.1:9"): "cannot reach http://127.0.0.1:9",
        (): "the following arguments are required: type",
    }
    for args, expected in cases.items():
        result = run_tests(*args, "--report-dir", str(tmp_path / "never"))
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (args, result.stderr)
    assert not (tmp_path / "never").exists()


def test_errors_locust_finds_are_shown_as_it_says_them_and_leave_no_run_folder(demobot, tmp_path: Path) -> None:
    bot = demobot()
    cases = {
        ("--stream-fromat", "openai"): [
            "locust: error: unrecognized arguments: --stream-fromat",  # not "__main__.py" (python -m locust)
            "Did you mean '--stream-format'?",
        ],
        ("--stream-format", "opnai"): ["chatswarm: error: --stream-format 'opnai' is not known; use one of: openai,"],
    }
    for extra, expected in cases.items():
        result = run_tests("stream", "--host", bot.url, "--report-dir", str(tmp_path / "never"), "--", *extra)
        assert result.returncode == 2, (extra, result.stdout, result.stderr)
        shown = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert shown[0].startswith("Running the stream test against"), shown
        assert len(shown) == 1 + len(expected), shown  # no "Locust stopped early" and the end of its log
        assert all(line.startswith(start) for line, start in zip(shown[1:], expected, strict=True)), shown
        assert not (tmp_path / "never").exists(), "a run Locust refused leaves no folder behind"


def bounded_duration_s(conf: dict[str, str]) -> float:
    """The longest a test type can run: its --run-time, else the plan of its shape (which then ends by itself)."""
    from argparse import Namespace

    from locust.util.timespan import parse_timespan

    from shapes.base import ScheduleShape
    from shapes.breakpoint import BreakpointShape
    from shapes.options import SHAPES

    if conf.get("run-time"):
        return float(parse_timespan(conf["run-time"]))
    options = Namespace(**{key.replace("-", "_"): value for key, value in conf.items()})
    shape = SHAPES[conf["shape"]]
    if issubclass(shape, ScheduleShape):
        return shape().make_schedule(options).duration
    assert issubclass(shape, BreakpointShape), f"shape {conf['shape']} needs a run-time"
    steps = (int(conf["max-users"]) - int(conf["start-users"])) // int(conf["step-users"]) + 1
    return steps * float(conf["step-time"])


def test_every_test_type_has_a_maximum_duration() -> None:
    from scripts.run_tests import CONFIG_DIR, read_conf, test_types

    bounds = {name: bounded_duration_s(read_conf(CONFIG_DIR / f"{name}.conf")) for name in test_types()}
    assert all(0 < bound <= 2 * 3600 for bound in bounds.values()), bounds
    assert bounds["smoke"] == 15 and bounds["endurance"] == 3600


def test_run_time_caps_every_shape(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "5", "--token-ms", "1")
    run = run_locust(
        "--host", bot.url, "--user-mix", "RestChatUser", "--shape", "breakpoint", "--slo", "p95<5s",
        "--step-time", "60", "-t", "4s", timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.output
    assert run.summary["duration_s"] < 8
    assert run.summary["shape"]["reason"].startswith("ended early at 10 users"), run.summary["shape"]


def test_without_the_dependencies_both_entry_points_name_the_setup_command() -> None:
    # -S leaves site-packages (the virtualenv's included) out: what a fresh machine's python3 has.
    for command in (["scripts/run_tests.py", "smoke"], ["-c", "import runpy; runpy.run_path('locustfile.py')"]):
        result = subprocess.run(
            [sys.executable, "-S", *command], cwd=ROOT, capture_output=True, text=True, timeout=30
        )  # fmt: skip
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert "is not installed" in lines[0] and "pip install -r requirements.txt" in lines[0], lines
