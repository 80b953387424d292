"""Credentials in the target's URL (--host http://bob:pw@host) never reach an output (shown as ***)."""

from __future__ import annotations

from pathlib import Path

from core.target import shown_url

PASSWORD = "s3cret-Pa55"


def test_shown_url_hides_user_and_password() -> None:
    assert shown_url(f"http://bob:{PASSWORD}@127.0.0.1:8080/api") == "http://***@127.0.0.1:8080/api"
    assert shown_url("https://token@example.com") == "https://***@example.com"
    assert shown_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


def test_a_run_writes_its_host_without_the_password(demobot, run_locust) -> None:
    bot = demobot()
    host = bot.url.replace("http://", f"http://bob:{PASSWORD}@")
    run = run_locust("--host", host, "-u", "1", "-t", "3s", "--think-time", "0.5", report_page=True)
    assert run.returncode == 0, run.output
    assert run.summary["host"] == bot.url.replace("http://", "http://***@")
    assert PASSWORD not in run.output
    leaks = [
        p.name for p in Path(run.report_dir).iterdir() if p.is_file() and PASSWORD in p.read_text(errors="replace")
    ]
    assert not leaks, leaks  # summary.json, index.html, report.html, run.log, the CSV files


def test_cannot_reach_names_the_host_without_the_password(run_locust) -> None:
    run = run_locust("--host", f"http://bob:{PASSWORD}@127.0.0.1:1", "-u", "1", "-t", "2s")
    assert run.returncode == 2
    assert "cannot reach http://***@127.0.0.1:1" in run.output and PASSWORD not in run.output
