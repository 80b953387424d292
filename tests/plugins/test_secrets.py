"""Planted passwords, API keys and tokens never show up in a run's output, its run folder or the web UI.

Real runs against demobot with sign-in required: REST logins (one account with a wrong password, so failed
logins get logged), WebSocket chat with the token in the handshake header or the query, plenary accounts,
a streaming user with an API key, Locust at DEBUG level, and the web UI while a test runs.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demobot.launcher import DemobotProcess
from tests.conftest import ROOT, LocustRun, clean_env, failure_counts, free_port, locust_run
from tests.loopback_server import LoopbackServer

EMAIL = "planted@example.com"
PASSWORD = "Plant3d-Passw0rd-XYZ"
WRONG_PASSWORD = "Wr0ng-Plant3d-Passw0rd"
CHATBOT_API_KEY = "sk-plant3d-chatbot-0123456789abcdef"
OPENAI_API_KEY = "sk-plant3d-openai-fedcba9876543210"
PLENARY_PASSWORD = "Plant3d-Plenary-Pw"
PLANTED = (PASSWORD, WRONG_PASSWORD, CHATBOT_API_KEY, OPENAI_API_KEY, PLENARY_PASSWORD)
URL_PASSWORD = "Url-Pw-d41c8e77"
ECHO_PASSWORD = "Echo-Pw-7f3a9c1e"
ECHO_API_KEY = "sk-echo-5b2d8e40aa61"
ECHO_HEADER_KEY = "hdr-echo-93c0d4e1f2"
ECHO_TOKEN = "tok-echo-0a1b2c3d4e5f6a7b8c9d"
ECHOED = (ECHO_PASSWORD, ECHO_API_KEY, ECHO_HEADER_KEY, URL_PASSWORD, ECHO_TOKEN)
"""Credentials the echoing target quotes back (test_no_secret_the_target_echoes)."""

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


def run_folder(folder: Path, required: tuple[str, ...] = RUN_FILES) -> dict[str, bytes]:
    """Every file of a run folder, by its path inside the folder."""
    files = {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    missing = [name for name in required if name not in files]
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
        ["--user-mix", "StreamingChatUser", "-u", "2", "--api-key={token}", "--loglevel", "DEBUG"],
        check_key_accepted,
    ),
    "streaming with a rejected CHATBOT_API_KEY": (  # the run's outputs: the probe would stop the start
        ["--user-mix", "StreamingChatUser", "-u", "2", "--skip-probe"],
        check_key_rejected,
    ),
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
    host = bot.url.replace("http://", f"http://bob:{URL_PASSWORD}@")  # the live report shows the host
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--host", host, "--autostart"]
    command += ["--web-host", "127.0.0.1", "--web-port", str(port), "--report-dir", str(tmp_path / "ui")]
    command += ["-u", "4", "-r", "20", "-t", "60s", "--think-time", "0.2", "--loglevel", "DEBUG"]
    command += ["--auth", "login", "--accounts", accounts, "--user-mix", "RestChatUser StreamingChatUser"]
    command += [f"--api-key={issued_token}", "--user-password", PLENARY_PASSWORD]
    command += ["--skip-probe"]  # the URL's credentials make every REST question a 401, which the probe would stop
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
    assert bot.url.replace("http://", "http://***@").encode() in pages["/stats/report"]
    sources = {"output": output, **{f"web UI {page}": body for page, body in pages.items()}}
    sources |= run_folder(tmp_path / "ui")
    assert not leaks(sources, (*PLANTED, issued_token, URL_PASSWORD))


CUT_SHOWS = 10
"""Characters of a secret a cut-short echo leaves at the end of a failure name (see EchoingServer.quote)."""


class EchoingServer(LoopbackServer):
    """A hostile target that quotes back every credential it was ever sent, one per answer in turn: in an error
    event of a stream, a WebSocket close reason, and a header; every third quote is cut short after CUT_SHOWS
    characters of the secret, the way a failure name quoting the first 80 characters of an error cuts it."""

    def __init__(self) -> None:
        self.seen: dict[str, None] = {}
        self.turn = itertools.count()
        super().__init__()

    def answer_request(self, connection: socket.socket, request: bytes) -> None:
        head, _, body = request.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length") or 0)
        for _ in range(10):  # the body may come in a later packet
            if len(body) >= length:
                break
            body += connection.recv(65536)
        self.learn(headers, body)
        if "/login" in lines[0]:
            token = json.dumps({"access_token": ECHO_TOKEN, "expires_in": 3600}).encode()
            connection.sendall(self.head("200 OK", "application/json", len(token)) + token)
        elif headers.get("upgrade", "").lower() == "websocket":
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + WS_GUID).encode()).digest())
            connection.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
            connection.sendall(b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            reason = struct.pack("!H", 4001) + self.quote(50).encode()[:123]  # names show 60 characters of it
            connection.sendall(bytes([0x88, len(reason)]) + reason)
            time.sleep(0.2)
        else:
            event = json.dumps({"error": {"message": self.quote(70)}})
            stream = f"data: {event}\n\n".encode()
            connection.sendall(self.head("200 OK", "text/event-stream", len(stream)) + stream)

    def learn(self, headers: dict[str, str], body: bytes) -> None:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        found = [credential, headers.get("x-api-key")]
        if scheme == "Basic":
            user_password = base64.b64decode(credential).decode()
            found += [user_password, user_password.partition(":")[2]]
        if body.startswith(b"{"):
            found.append(json.loads(body).get("password"))
        self.seen.update(dict.fromkeys(value for value in found if value))

    def quote(self, cut_at: int) -> str:
        """One credential seen so far, in turn; every third one cut short after CUT_SHOWS characters."""
        seen = list(self.seen) or ["nothing"]
        turn = next(self.turn)
        secret = seen[turn % len(seen)]
        if turn % 3 == 2:
            return ("invalid credential " * 10)[:cut_at] + secret[:CUT_SHOWS]
        return f"invalid credential {secret}"

    def head(self, status: str, content_type: str, length: int) -> bytes:
        echoed = f"X-Echo: {self.quote(200)}\r\nWWW-Authenticate: Bearer error={self.quote(200)!r}\r\n"
        newest = list(self.seen)[-1] if self.seen else "nothing"  # not a turn of quote(): its pattern stays
        echoed += f"X-Request-Id: req-{newest}\r\n"  # requests.csv keeps the server's request id
        return (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n{echoed}"
            "Connection: close\r\n\r\n"
        ).encode()


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


ECHO_SCENARIOS: dict[str, tuple[list[str], set[str]]] = {
    "an API key, a key header and the URL's password": (
        # A REST user sends the URL's user:password as Basic auth (the key goes in X-Api-Key); the streams echo it.
        [
            *("--api-key", ECHO_API_KEY, "--api-key-header", "X-Api-Key"),
            *("--ws-header", f"X-Api-Key: {ECHO_HEADER_KEY}"),
            *("--user-mix", "StreamingChatUser WebSocketChatUser RestChatUser", "-u", "3"),
        ],
        {ECHO_API_KEY, ECHO_HEADER_KEY, URL_PASSWORD, f"bob:{URL_PASSWORD}"},
    ),
    "a password and its token": (["--auth", "login", "--accounts", "{accounts}"], {ECHO_PASSWORD, ECHO_TOKEN}),
}
"""What each run sends (besides the URL's password), and which credentials the target must then have seen. The
URL's user:password goes as Basic auth only where no Authorization of the user's own does (the sign-in token wins)."""


@pytest.mark.parametrize("scenario", ECHO_SCENARIOS)
def test_no_secret_the_target_echoes(scenario: str, tmp_path: Path) -> None:
    """A target quotes the credentials it was sent back in its errors: they reach failure names only as ***, and
    nowhere else: not in the run folder, Locust's own --csv and --html files, or the output."""
    args, sent = ECHO_SCENARIOS[scenario]
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(f"email,password\necho@example.com,{ECHO_PASSWORD}\n")
    server = EchoingServer()
    try:
        run = locust_run(
            tmp_path / "run", "--host", server.url.replace("http://", f"http://bob:{URL_PASSWORD}@"), "-t", "3s",
            "-u", "2", "-r", "20", "--think-time", "0.1", "--user-mix", "StreamingChatUser WebSocketChatUser",
            *(arg.format(accounts=accounts) for arg in args), "--loglevel", "DEBUG",
            "--csv", str(tmp_path / "locust"), "--html", str(tmp_path / "locust.html"), report_page=True, timeout=60,
        )  # fmt: skip
    finally:
        server.close()
    assert run.returncode == 1, run.output
    assert sent <= set(server.seen), server.seen
    failures = failure_counts(run)
    for start, cut_short in (("error in stream: ", "crede***"), ("closed 4001 ", "cred***")):
        assert f"{start}invalid credential ***" in failures, failures
        assert any(name.startswith(start) and name.endswith(cut_short) for name in failures), failures
    sources = {"output": run.output.encode(), **run_folder(run.report_dir, ("run.log", "requests.csv", "summary.json"))}
    sources |= {path.name: path.read_bytes() for path in tmp_path.glob("locust*")}  # Locust's own --csv and --html
    assert {"index.html", "locust.html", "locust_failures.csv", "locust_exceptions.csv"} <= set(sources), sources
    cut = tuple(secret[:CUT_SHOWS] for secret in ECHOED)
    assert not leaks(sources, (*ECHOED, *cut))
