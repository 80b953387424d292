"""The real Locust web UI in headless Chromium: pick a shape in the class picker, start it, watch the
user count follow the shape, and start it again fresh."""

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

from tests.conftest import CHROMIUM_ARGS, ROOT, clean_env, free_port

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.txt")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
RAMP = {"startUsers": "2", "stepUsers": "2", "stepTime": "2", "maxUsers": "6", "holdTime": "2", "thinkTime": "0.2"}


@pytest.fixture
def web_ui(demobot, tmp_path: Path) -> Iterator[str]:
    bot = demobot("--ttft-ms", "10", "--token-ms", "1")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        "locustfile.py",
        "--host",
        bot.url,
        "--class-picker",
        "--shape",
        "ramp",
    ]
    command += ["--web-host", "127.0.0.1", "--web-port", str(port), "--report-dir", str(tmp_path / "ui")]
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
        yield url
    finally:
        locust.terminate()
        locust.wait(timeout=30)


def watch(url: str, seconds: float) -> list[tuple[str, int]]:
    """(state, user count) twice a second, until the test stops or time runs out."""
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stats = json.load(urllib.request.urlopen(url + "/stats/requests", timeout=2))
        seen.append((stats["state"], stats["user_count"]))
        if stats["state"] == "stopped" and len(seen) > 2:
            break
        time.sleep(0.5)
    return seen


def start_ramp(page) -> None:
    page.select_option("select[name=shapeClass]", "RampShape")
    page.get_by_text("Custom parameters").click()
    for name, value in RAMP.items():
        page.fill(f"input[name={name}]", value)
    page.get_by_role("button", name="Start").click()


def test_pick_a_shape_in_the_web_ui_and_run_it_twice(web_ui: str) -> None:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(web_ui + "/")
        start_ramp(page)
        first = watch(web_ui, 20)
        page.get_by_role("button", name="New").click()
        start_ramp(page)
        second = watch(web_ui, 20)
        browser.close()
    for run in (first, second):
        counts = [users for state, users in run if state == "running"]
        # The ramp's steps in order, then it stops by itself.
        assert counts[0] == 2 and max(counts) == 6, run
        assert counts == sorted(counts), run
        assert {2, 4, 6} <= set(counts), run
        assert run[-1][0] == "stopped", run
