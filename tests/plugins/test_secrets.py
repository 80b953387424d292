"""Planted passwords, API keys and tokens never show up in a run's output, its run folder or the web UI.

Real runs against demobot with sign-in required: REST logins (one account with a wrong password, so failed
logins get logged), WebSocket chat with the token in the handshake header or the query, plenary accounts,
a streaming user with an API key, Locust at DEBUG level, and the web UI while a test runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demobot.launcher import DemobotProcess
from tests.conftest import ROOT, LocustRun, clean_env, free_port

EMAIL = "planted@example.com"
PASSWORD = "Plant3d-Passw0rd-XYZ"
WRONG_PASSWORD = "Wr0ng-Plant3d-Passw0rd"
CHATBOT_API_KEY = "sk-plant3d-chatbot-0123456789abcdef"
OPENAI_API_KEY = "sk-plant3d-openai-fedcba9876543210"
PLENARY_PASSWORD = "Plant3d-Plenary-Pw"
PLANTED = (PASSWORD, WRONG_PASSWORD, CHATBOT_API_KEY, OPENAI_API_KEY, PLENARY_PASSWORD)

TOKEN_PATTERNS = (
    re.compile(rb"Bearer\s+[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(rb"[?&]token=[A-Za-z0-9._~+/-]{12,}"),
)
"""A bearer token that demobot issued during a run, whatever its value, in a header or a WebSocket query."""

RUN_FILES = ("run.log", "requests.csv", "summary.json", "index.html", "report.html", "stats_failures.csv")
"""Files every run folder here must have, so that a clean grep means something."""

WEB_UI_PAGES = (
    "/",
    "/stats/requests",
    "/stats/report",
    "/stats/requests/csv",
    "/stats/failures/csv",
    "/exceptions",
    "/tasks",
    "/logs",
)


def secret_env() -> dict[str, str]:
    return clean_env(
        LOGIN_EMAIL=EMAIL, LOGIN_PASSWORD=PASSWORD, CHATBOT_API_KEY=CHATBOT_API_KEY, OPENAI_API_KEY=OPENAI_API_KEY
    )


def leaks(sources: dict[str, bytes], secrets: tuple[str, ...]) -> list[str]:
    """Each planted secret or bearer token found, with where it was found."""
    found = []
    for where, data in sources.items():
        found += [f"{secret!r} in {where}" for secret in secrets if secret.encode() in data]
        found += [f"{m.group()!r} in {where}" for pattern in TOKEN_PATTERNS for m in pattern.finditer(data)]
    return found


def run_folder(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder, by its path inside the folder."""
    files = {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    missing = [name for name in RUN_FILES if name not in files]
    assert not missing, f"run folder without {missing}: {sorted(files)}"
    return files


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemobotProcess]:
    flags = ("--auth", "required", "--account", f"{EMAIL}:{PASSWORD}", "--ttft-ms", "5", "--token-ms", "1")
    with DemobotProcess(*flags) as process:
        yield process


@pytest.fixture(scope="module")
def issued_token(bot: DemobotProcess) -> str:
    """A real token from demobot, used as an API key: it must not leak either."""
    body = json.dumps({"email": EMAIL, "password": PASSWORD}).encode()
    request = urllib.request.Request(
        f"{bot.url}/api/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["access_token"]


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One good account and one with a wrong password: users take them in turn."""
    path = tmp_path_factory.mktemp("accounts") / "accounts.csv"
    path.write_text(f"email,password\n{EMAIL},{PASSWORD}\n{EMAIL},{WRONG_PASSWORD}\n")
    return str(path)


def rows(run: LocustRun, prefix: str) -> tuple[int, int]:
    """(requests, failures) over the stats rows whose key starts with ``prefix``."""
    found = run.rows(prefix).values()
    return sum(row["count"] for row in found), sum(row["failures"] for row in found)


def check_login_runs(run: LocustRun) -> None:
    assert rows(run, "POST login")[0] > 0 and rows(run, "POST chat:")[0] > 0, run.output
    assert rows(run, "WS connect")[0] > 0, run.output


def check_wrong_password_logged(run: LocustRun) -> None:
    check_login_runs(run)
    logins, failed = rows(run, "POST login")
    assert 0 < failed < logins, run.output  # the good account signed in, the wrong password did not
    assert "login failed: HTTP 401 Unauthorized" in (run.report_dir / "stats_failures.csv").read_text()


def check_key_accepted(run: LocustRun) -> None:
    answers, failed = rows(run, "E2E chat:")
    assert answers > 0 and failed == 0, run.output


def check_key_rejected(run: LocustRun) -> None:
    answers, failed = rows(run, "E2E chat:")
    assert answers > 0 and failed == answers, run.output
    assert "HTTP 401 Unauthorized" in run.output


SCENARIOS: dict[str, tuple[list[str], Callable[[LocustRun], None]]] = {
    "login, WebSocket header, plenary, DEBUG": (
        [
            *("--auth", "login", "--user-mix", "RestChatUser WebSocketChatUser PlenaryUser", "-u", "3"),
            *("--user-password", PLENARY_PASSWORD, "--loglevel", "DEBUG"),
        ],
        check_login_runs,
    ),
    "wrong password, token in the WebSocket query, DEBUG": (
        [
            *("--auth", "login", "--accounts", "{accounts}", "--user-mix", "RestChatUser WebSocketChatUser"),
            *("-u", "4", "--ws-token-param", "token", "--loglevel", "DEBUG"),
        ],
        check_wrong_password_logged,
    ),
    "streaming with --api-key, DEBUG": (
        ["--user-mix", "StreamingChatUser", "-u", "2", "--api-key", "{token}", "--loglevel", "DEBUG"],
        check_key_accepted,
    ),
    "streaming with a rejected CHATBOT_API_KEY": (["--user-mix", "StreamingChatUser", "-u", "2"], check_key_rejected),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_secret_in_output_or_run_folder(
    scenario: str, bot: DemobotProcess, issued_token: str, accounts: str, run_locust: Callable[..., LocustRun]
) -> None:
    args, check = SCENARIOS[scenario]
    args = [arg.format(accounts=accounts, token=issued_token) for arg in args]
    run = run_locust(
        "--host", bot.url, "-t", "3s", "-r", "20", "--think-time", "0.2", *args, env=secret_env(), timeout=90,
        report_page=True,
    )  # fmt: skip
    assert run.returncode in (0, 1), run.output
    check(run)
    sources = {"output": run.output.encode(), **run_folder(run.report_dir)}
    assert not leaks(sources, (*PLANTED, issued_token))


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_no_secret_in_the_web_ui(bot: DemobotProcess, issued_token: str, accounts: str, tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--host", bot.url, "--autostart"]
    command += ["--web-host", "127.0.0.1", "--web-port", str(port), "--report-dir", str(tmp_path / "ui")]
    command += ["-u", "4", "-r", "20", "-t", "60s", "--think-time", "0.2", "--loglevel", "DEBUG"]
    command += ["--auth", "login", "--accounts", accounts, "--user-mix", "RestChatUser StreamingChatUser"]
    command += ["--api-key", issued_token, "--user-password", PLENARY_PASSWORD]
    url = f"http://127.0.0.1:{port}"
    with subprocess.Popen(
        command, cwd=ROOT, env=secret_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as locust:
        try:
            requests = 0
            deadline = time.monotonic() + 30
            while requests < 20 and time.monotonic() < deadline and locust.poll() is None:
                time.sleep(0.5)
                try:
                    stats = json.loads(get(url + "/stats/requests"))["stats"]
                except OSError:
                    continue  # the web UI is not up yet
                requests = sum(row["num_requests"] for row in stats if row["name"] != "Aggregated")
            assert requests >= 20, "the test did not get going"
            pages = {page: get(url + page) for page in WEB_UI_PAGES}
        finally:
            locust.terminate()
            output, _ = locust.communicate(timeout=60)
    assert b'"api_key"' not in pages["/"] and b'"user_password"' not in pages["/"], "secret options are not shown"
    assert b'"name": "login"' in pages["/stats/requests"]
    sources = {"output": output, **{f"web UI {page}": body for page, body in pages.items()}}
    sources |= run_folder(tmp_path / "ui")
    assert not leaks(sources, (*PLANTED, issued_token))
