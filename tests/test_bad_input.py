"""Mistakes a user can make end in one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, clean_env


def one_error_line(output: str) -> str:
    """The single error line of a failed start; fails the test if there is a traceback or several errors."""
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, output
    return errors[0]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "broken.jsonl").write_text('{"prompt": "fine"}\n{"prompt": "oops"\n')
    (folder / "accounts.csv").write_text("name,secret\nx,y\n")
    return folder


BAD_LOCUST_INPUTS = [
    # (extra arguments, expected words of the one error line)
    (["--prompts", "{bad}/missing.jsonl"], "--prompts: no such file or folder"),
    (["--prompts", "{bad}/broken.jsonl"], "broken.jsonl:2: malformed JSON"),
    (["--think-time", "3-1"], "--think-time: '3-1' must be"),
    (["--think-time", "soon"], "--think-time: 'soon' is not a number"),
    (["--prompt-weights", "simple=lots"], "--prompt-weights: bad entry"),
    (["--user-mix", "GhostUser"], "--user-mix: unknown user class 'GhostUser'"),
    (["--auth", "login"], "--auth login needs LOGIN_EMAIL and LOGIN_PASSWORD"),
    (["--auth", "login", "--accounts", "{bad}/accounts.csv"], "accounts CSV needs a header row"),
    (["--auth", "magic"], "argument --auth: invalid choice: 'magic'"),
    (["--request-timeout", "0"], "--request-timeout: must be greater than zero"),
    (["--request-timeout", "soon"], "argument --request-timeout: invalid float value"),
    (["--seed", "x1"], "--seed: 'x1' is not a whole number"),
    (["--conversation-turns", "0"], "--conversation-turns: must be 1 or more"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_LOCUST_INPUTS, ids=[e for _, e in BAD_LOCUST_INPUTS])
def test_bad_locust_input(demobot_url: str, bad_files: Path, args: list[str], expected: str) -> None:
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "-u", "1", "-t", "2s"]
    command += ["--host", demobot_url, *[a.format(bad=bad_files) for a in args]]
    result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in one_error_line(result.stdout + result.stderr)


@pytest.fixture(scope="module")
def demobot_url() -> str:
    from demobot.launcher import DemobotProcess

    with DemobotProcess() as bot:
        yield bot.url


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--host", "http://127.0.0.1:9"], "cannot reach http://127.0.0.1:9 (connection refused)"),
        (["--host", "127.0.0.1:8080"], "is not a url like http://127.0.0.1:8080"),
        ([], "no target: give --host URL or set CHATBOT_URL"),
    ],
)
def test_bad_or_missing_target(args: list[str], expected: str) -> None:
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "-u", "1", "-t", "2s", *args]
    result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert expected.lower() in one_error_line(result.stdout + result.stderr).lower()


def test_chatbot_url_is_the_default_host(demobot_url: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "-u", "1", "-t", "2s"]
    command += ["--report-dir", str(tmp_path), "--user-mix", "HealthCheckUser"]
    result = subprocess.run(
        command, cwd=ROOT, env=clean_env(CHATBOT_URL=demobot_url), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert demobot_url in (tmp_path / "summary.json").read_text()
