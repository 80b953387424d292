"""The real Locust web UI in headless Chromium, driven as a new user would: the form shows the options that
matter, a breakpoint test started from it shows its steps live on the Chatswarm tab, Stop writes that test's
run folder (matching what the tab showed), and a second test in the same process gets a folder of its own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugins.web.tab import shown
from tests.conftest import CHROMIUM_ARGS, ROOT, clean_env, free_port

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.txt")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
STEPS = {"startUsers": "2", "stepUsers": "2", "stepTime": "2", "maxUsers": "40", "settleTime": "0.5"}
"""Typed into the form: steps of 2 users every 2 s, far below demobot's knee, so the test only ends on Stop."""


@pytest.fixture
def web_ui(demobot, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    bot = demobot("--ttft-ms", "10", "--token-ms", "1")
    port = free_port()
    reports = tmp_path / "ui"
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--host", bot.url, "--class-picker"]
    command += ["--shape", "breakpoint", "--slo", "p95<2000", "--think-time", "0.2", "--skip-probe"]
    command += ["--web-host", "127.0.0.1", "--web-port", str(port), "--report-dir", str(reports)]
    locust = subprocess.Popen(command, cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        yield url, reports
    finally:
        locust.terminate()
        locust.wait(timeout=30)


def start_breakpoint(page) -> str:
    """Pick the breakpoint shape, type its steps, start it; the form's text as it was."""
    page.select_option("select[name=shapeClass]", "BreakpointShape")
    page.get_by_text("Custom parameters").click()
    for name, value in STEPS.items():
        page.fill(f"input[name={name}]", value)
    form = page.locator("form").first.inner_text()
    page.get_by_role("button", name="Start").click()
    return form


def tab_text(page, wanted: str, seconds: float = 15) -> str:
    """The Chatswarm tab's table once it shows ``wanted`` (it refreshes every 2 s)."""
    deadline = time.monotonic() + seconds
    text = ""
    while time.monotonic() < deadline:
        text = page.locator("table").first.inner_text()
        if wanted in text:
            return text
        time.sleep(0.3)
    raise AssertionError(f"{wanted!r} never showed on the Chatswarm tab:\n{text}")


def stop_and_find_folder(page, url: str, reports: Path, known: set[Path]) -> Path:
    """Stop the test; its run folder appears, complete (summary.json and index.html), beside the earlier ones."""
    page.get_by_role("button", name="Stop").click()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        written = {path.parent for path in reports.glob("custom-*/index.html")} - known
        if written:
            return written.pop()
        time.sleep(0.3)
    raise AssertionError(f"no new run folder in {reports}: {sorted(reports.iterdir())}")


def test_the_form_a_live_breakpoint_and_one_run_folder_per_test(web_ui: tuple[str, Path]) -> None:
    url, reports = web_ui
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url + "/")
        fields = page.evaluate("Object.keys(window.templateArgs.extra_options)")
        ticked = {name: page.locator("tr", has_text=name).locator("input").is_checked() for name in ("RestChatUser",)}
        ticked["PlenaryUser"] = page.locator("tr", has_text="PlenaryUser").locator("input").is_checked()
        form = start_breakpoint(page)
        page.get_by_role("tab", name="Chatswarm").click()
        live = tab_text(page, "breakpoint step 2")
        first = stop_and_find_folder(page, url, reports, set())
        ended = tab_text(page, "Report of the last test")
        page.get_by_role("button", name="New").click()
        start_breakpoint(page)
        page.get_by_role("tab", name="Chatswarm").click()
        tab_text(page, "breakpoint step 1")
        second = stop_and_find_folder(page, url, reports, {first})
        last_report = urllib.request.urlopen(url + "/chatswarm/last-test/", timeout=5).read().decode()
        browser.close()
    # The form: the target's, RestChatUser's and the breakpoint's options (~15 of ~140), and only the user
    # named by --user-mix's default ticked.
    assert len(fields) <= 25 and {"chat_path", "start_users", "settle_time"} <= set(fields), fields
    assert not {"model", "audio_path", "target_latency", "waves"} & set(fields), fields
    assert ticked == {"RestChatUser": True, "PlenaryUser": False}
    assert "--chatswarm-help" in form and "REST chat and health users: " in form, form  # the note, the groups
    assert "SLO\tp95<2000" in live and "holds" in live and "generator" in live, live
    # Two tests, two complete folders, each named by and timed from its own start.
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (first, second)]
    assert first != second and summaries[0]["started"] < summaries[1]["started"]
    for folder, summary in zip((first, second), summaries, strict=True):
        assert (folder / "requests.csv").exists() and (folder / "report.html").exists()
        history = (folder / "stats_stats_history.csv").read_text().splitlines()
        began = int(history[1].split(",")[0])
        assert abs(began - time.mktime(time.strptime(folder.name[-15:], "%Y%m%d-%H%M%S"))) <= 2, (folder, began)
        assert summary["duration_s"] < 15 and summary["shape"]["name"] == "breakpoint"
        samples = [float(line.split(",")[0]) for line in (folder / "resources.csv").read_text().splitlines()[1:]]
        assert all(began - 1 <= t <= began + summary["duration_s"] + 2 for t in samples), samples
        assert samples or folder == second, folder  # the monitor samples every 2 s; the second test is short
    assert f"started {summaries[1]['started']}" in last_report  # the link serves the last test's page
    # What the tab showed at the first test's end is what its summary.json holds.
    steps = summaries[0]["shape"]["steps"]
    assert len(steps) >= 2, steps
    for number, step in enumerate(steps, 1):
        value = f"{shown(step['rps'])} req/s, p95 {shown(step['p95_ms'])} ms"
        assert f"breakpoint step {number}\t{step['users']} users\t{value}" in ended, (step, ended)
    assert str(first) in ended
