"""Run reports: the run folder's files and page, the SLO gate's exit codes, report.py and compare.py on
good and broken folders, and the resource monitor against processes with known CPU use."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from report.verdict import assess_success_rate
from tests.conftest import ROOT, LocustRun

SCRIPTS = ROOT / "scripts"
CHAT = ("--user-mix", "RestChatUser", "--think-time", "0.1")


def script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


@pytest.fixture(scope="module")
def streamed_run(tmp_path_factory: pytest.TempPathFactory) -> LocustRun:
    """One real streaming run with a ramp, an SLO and a watched server, shared by the folder tests."""
    from demobot.launcher import DemobotProcess
    from tests.conftest import clean_env

    folder = tmp_path_factory.mktemp("streamed") / "run"
    with DemobotProcess("--ttft-ms", "30", "--token-ms", "2") as bot:
        command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "--host", bot.url]
        command += ["--user-mix", "StreamingChatUser", "--think-time", "0.1", "--shape", "ramp"]
        command += ["--start-users", "2", "--step-users", "2", "--step-time", "2", "--max-users", "6"]
        command += ["--hold-time", "2", "--slo", "ttft_p95<500", "--monitor-pid", str(bot.pid)]
        command += ["--report-dir", str(folder)]
        result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)
    return LocustRun(result.returncode, result.stdout + result.stderr, folder)


def test_a_stream_run_prints_ttft_itl_tpot_and_tokens_per_s(streamed_run: LocustRun) -> None:
    """The log's last lines give the LLM headline figures, to the digit of summary.json."""
    llm = streamed_run.summary["llm"]
    line = next(line for line in streamed_run.output.splitlines() if "LLM      TTFT p50/p95/p99" in line)
    for name in ("ttft", "itl", "tpot"):
        figures = llm[f"{name}_ms"]
        shown = "/".join(
            f"{figures[p]:,.0f}" if figures[p] >= 100 else f"{figures[p]:.1f}" for p in ("p50", "p95", "p99")
        )
        assert f"{name.upper()} p50/p95/p99 {shown} ms" in line, line
    assert f"output {llm['output_tokens_per_s']:,.1f} tokens/s" in line
    assert 28 <= llm["ttft_ms"]["p50"] <= 45 and 1.5 <= llm["itl_ms"]["p50"] <= 5  # demobot: 30 ms, then 2 ms a token


def test_the_run_folder_holds_everything(streamed_run: LocustRun) -> None:
    assert streamed_run.returncode == 0, streamed_run.output
    folder = streamed_run.report_dir
    for name in ("index.html", "report.html", "summary.json", "requests.csv", "resources.csv", "run.log",
                 "stats_stats.csv", "stats_stats_history.csv", "stats_failures.csv"):  # fmt: skip
        assert (folder / name).stat().st_size > 0, name
    summary = streamed_run.summary
    gate_ttft_p95 = summary["slo"][0]["value"]
    assert summary["slo"] == [{"slo": "ttft_p95<500", "value": gate_ttft_p95, "passed": True}]
    # One value per metric: the gate judged the llm section's exact TTFT p95; demobot's TTFT is 30 ms.
    assert gate_ttft_p95 == pytest.approx(summary["llm"]["ttft_ms"]["p95"], abs=0.005)
    assert 30 <= gate_ttft_p95 < 250
    assert summary["verdict"] == {
        "success_rate": 1.0,
        "assessment": "spare capacity",
        "answer": f"all SLOs pass: ttft_p95<500 ({gate_ttft_p95:g})",
    }
    assert summary["generator"]["loop_lag_ms"]["p99"] is not None  # trust itself: tests/plugins/test_trust.py
    trend = summary["trend"]  # every answer in exactly one slice (TTFT rows are timings of those answers)
    assert round(sum(s["rps"] * trend["slice_s"] for s in trend["slices"])) == summary["llm"]["requests"]
    assert trend["saturation"] is None  # 2 to 6 users against a fast bot: throughput keeps up
    watched = [label for label in summary["resources"]["processes"] if label != "load generator"]
    assert watched == [f"{PYTHON} (pid {_watched_pid(folder)})"]  # demobot, named by its executable
    page = (folder / "index.html").read_text()
    for heading in ("Service level objectives", "Requests", "LLM metrics", "Load shape: ramp", "Resources",
                    "Over time", "Time to first token"):  # fmt: skip
        assert heading in page, heading
    assert page.count("data:image/png;base64,") >= 4
    # The page shows the same figures as summary.json and the gate, to the digit (two decimals).
    for figure in (gate_ttft_p95, *(summary["llm"][name]["p95"] for name in ("ttft_ms", "itl_ms", "tpot_ms"))):
        assert f"<td>{figure:,.2f}</td>" in page, figure


PYTHON = Path(sys.executable).name[:15]
"""How the system names a process started with this interpreter (the executable's file name, at most 15 characters)."""


def _watched_pid(folder: Path) -> str:
    rows = (folder / "resources.csv").read_text().splitlines()[1:]
    return next(row.split(",")[2] for row in rows if " (pid " in row.split(",")[1])


def test_the_page_renders_with_its_plots_in_a_browser(streamed_run: LocustRun, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium package is not installed")
    from tests.conftest import CHROMIUM_ARGS

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto((streamed_run.report_dir / "index.html").as_uri())
        widths = page.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
        page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
        browser.close()
    assert len(widths) >= 4 and all(width > 300 for width in widths), widths
    assert (tmp_path / "index.png").stat().st_size > 50_000


def test_slo_gate_exit_codes(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "20", "--token-ms", "2")
    kept = run_locust("--host", bot.url, *CHAT, "-u", "2", "-t", "3s", "--slo", "p95<5s", "--slo", "fail_ratio<1%")
    broken = run_locust("--host", bot.url, *CHAT, "-u", "2", "-t", "3s", "--slo", "p95<10", "--slo", "rps>1")
    assert kept.returncode == 0, kept.output
    assert broken.returncode == 3, broken.output
    assert [r["passed"] for r in broken.summary["slo"]] == [False, True]
    assert "SLO FAIL p95" in broken.output and "SLO PASS rps" in broken.output
    bad = run_locust("--host", bot.url, *CHAT, "-u", "1", "-t", "2s", "--slo", "p95<<3")
    assert bad.returncode == 2
    assert "--slo 'p95<<3': expected METRIC[NAME] OP VALUE" in bad.output
    assert not (bad.report_dir / "summary.json").exists()


def test_success_rate_reading() -> None:
    assert [assess_success_rate(r) for r in (1.0, 0.95, 0.8, 0.75, 0.7, 0.5)] == [
        "spare capacity", "adequate", "adequate", "at capacity", "at capacity", "overloaded",
    ]  # fmt: skip


def test_report_script_rebuilds_the_page_and_rejects_broken_folders(streamed_run: LocustRun, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(streamed_run.report_dir, copy)
    (copy / "index.html").unlink()
    (copy / "resources.csv").unlink()  # optional files may be missing
    result = script("report.py", str(copy))
    assert result.returncode == 0, result.stderr
    assert (copy / "index.html").exists() and result.stdout.strip() == str(copy / "index.html")

    (tmp_path / "empty").mkdir()
    cut = tmp_path / "cut"
    shutil.copytree(copy, cut)
    (cut / "summary.json").write_text('{"test_type": "load", "requ')
    bad_csv = tmp_path / "bad_csv"
    shutil.copytree(copy, bad_csv)
    (bad_csv / "requests.csv").write_bytes(b"\xff\xfe\x00garbage")
    cases = {
        tmp_path / "missing": "no such run folder",
        tmp_path / "empty": "no summary.json here",
        cut: "not valid JSON",
        bad_csv: "cannot be read as CSV",
    }
    for folder, expected in cases.items():
        result = script("report.py", str(folder))
        assert result.returncode == 2, (folder, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], result.stderr


def test_compare_flags_a_slower_release(demobot, run_locust, tmp_path: Path) -> None:
    fast = demobot("--ttft-ms", "20", "--token-ms", "2")
    slow = demobot("--ttft-ms", "200", "--token-ms", "2")
    before = run_locust("--host", fast.url, *CHAT, "-u", "2", "-t", "3s", "--seed", "1")
    same = run_locust("--host", fast.url, *CHAT, "-u", "2", "-t", "3s", "--seed", "1")
    after = run_locust("--host", slow.url, *CHAT, "-u", "2", "-t", "3s", "--seed", "1")
    result = script("compare.py", str(before.report_dir), str(after.report_dir))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "**REGRESSION**" in result.stdout and "p95_ms" in result.stdout
    assert (after.report_dir / "comparison.md").read_text() == result.stdout
    calm = script("compare.py", str(before.report_dir), str(same.report_dir), "--tolerance", "50")
    assert calm.returncode == 0, calm.stdout
    assert "No regressions." in calm.stdout
    broken = script("compare.py", str(before.report_dir), str(tmp_path))
    assert broken.returncode == 2 and "no summary.json here" in broken.stderr


@pytest.mark.timing
def test_resource_monitor_measures_known_cpu_use(demobot, run_locust) -> None:
    busy = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"]
    )
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(20)"])
    try:
        time.sleep(0.5)
        bot = demobot()
        run = run_locust(
            "--host", bot.url, "--user-mix", "HealthCheckUser", "-u", "1", "-t", "5s", "--monitor-interval", "1",
            "--monitor-pid", f"{busy.pid},{idle.pid}", "--cpu-threshold", "50",
        )  # fmt: skip
    finally:
        busy.kill()
        idle.kill()
    assert run.returncode == 0, run.output
    processes = run.summary["resources"]["processes"]
    busy_label, idle_label = f"{PYTHON} (pid {busy.pid})", f"{PYTHON} (pid {idle.pid})"
    # A busy loop takes a whole core (100%) on an idle machine, and still most of one on a loaded one.
    assert processes[busy_label]["cpu_percent"]["mean"] > 40, processes
    assert processes[idle_label]["cpu_percent"]["peak"] < 10, processes
    bottlenecks = run.summary["resources"]["bottlenecks"]
    assert any(line.startswith(f"{busy_label}: cpu percent peaked") for line in bottlenecks), bottlenecks
    assert not any(line.startswith(idle_label) for line in bottlenecks)
    assert f"Bottleneck: {busy_label}" in run.output


def test_monitor_pid_must_exist(run_locust, demobot) -> None:
    bot = demobot()
    run = run_locust("--host", bot.url, "-u", "1", "-t", "1s", "--monitor-pid", "999999")
    assert run.returncode == 2 and "--monitor-pid: no process with id 999999 is running" in run.output


def test_sections_show_nested_figures_as_rows_not_raw_dicts() -> None:
    """The audio table once showed "-" for every metric, plenary cells raw Python dicts."""
    from report.page import flatten, section_tables

    audio = {"protocols": {"raw": 2}, "calls": {"started": 2, "failed": 0}, "faults": {},
             "ttfa_ms": {"count": 2, "p50": 500.0, "p99": 501.0}, "late_frames": 1}  # fmt: skip
    plenary = {"fanout_ms": {"echo": {"count": 8, "p50": 0.69}, "peers": {"count": 16, "p50": 0.65}}, "lost": 0}
    assert flatten(audio) == (
        [{"metric": "ttfa_ms", "count": 2, "p50": 500.0, "p99": 501.0}],
        [{"figure": "protocols raw", "value": 2}, {"figure": "calls started", "value": 2},
         {"figure": "calls failed", "value": 0}, {"figure": "late_frames", "value": 1}],
    )  # fmt: skip
    assert flatten(plenary)[0] == [
        {"metric": "fanout_ms echo", "count": 8, "p50": 0.69},
        {"metric": "fanout_ms peers", "count": 16, "p50": 0.65},
    ]
    page = section_tables(audio) + section_tables(plenary)
    assert "{" not in page and "500.00" in page and "<td>fanout_ms peers</td>" in page
