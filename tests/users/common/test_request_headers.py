"""--header, --api-key and --api-key-header reach the target from every user kind, ${VAR}s are expanded, and the
key shows in no output: real Locust runs against a loopback server of the tests' own that records every
request's headers (an HTTP request or a WebSocket handshake alike), and the README's "point it at your bot" run.
"""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import threading
from argparse import Namespace
from pathlib import Path

from tests.conftest import ROOT, RUN_TESTS, clean_env, one_error_line
from tests.loopback_server import LoopbackServer
from users.common.request_headers import merged, request_headers
from users.ws.handshake import ws_headers

API_KEY = "sk-planted-headers-4f1e9a2b7c"
CUSTOM_SECRET = "custom-planted-8d3c0b5e61"
WS_ONLY = "ws-only-planted-2a9f7e"
BOT_KEY = "bot-planted-key-61c0d9e3b4"


def request_head(connection: socket.socket, first: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, path and headers (names in lower case) of the request whose first bytes are ``first``."""
    data = first
    while b"\r\n\r\n" not in data and len(data) < 65536:
        more = connection.recv(65536)
        if not more:
            break
        data += more
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, _, path = lines[0].partition(" ")  # the host check connects and sends nothing: method and path empty
    path = path.partition(" ")[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, path, headers


class RecordingServer(LoopbackServer):
    """Writes down the headers of every request and refuses it (401); a streamed answer instead carries an error
    quoting a header value it got, as a careless server might (failure names quote error messages)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.turn = itertools.count()
        super().__init__()

    def answer_request(self, connection: socket.socket, request: bytes) -> None:
        _, path, headers = request_head(connection, request)
        with self.lock:
            self.seen.append((path, headers))
        if path != "/v1/chat/completions":
            connection.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        quoted = headers.get(("x-custom", "x-key")[next(self.turn) % 2], "")
        event = f"data: {json.dumps({'error': {'message': f'rejected {quoted}'}})}\n\n".encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {len(event)}\r\n"
        connection.sendall(head.encode() + b"Connection: close\r\n\r\n" + event)


class KeyedBot(LoopbackServer):
    """The issue's bot: POST /v2/ask {"query": ...} → {"result": {"text": ...}}, only with the right X-Api-Key."""

    def answer_request(self, connection: socket.socket, request: bytes) -> None:
        method, path, headers = request_head(connection, request)
        if headers.get("x-api-key") != BOT_KEY:
            status, body = "401 Unauthorized", {"error": "bad key"}
        elif (method, path) != ("POST", "/v2/ask"):
            status, body = "404 Not Found", {"error": "no such path"}
        else:
            status, body = "200 OK", {"result": {"text": "Here is an answer."}}
        data = json.dumps(body).encode()
        head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        connection.sendall(head.encode() + b"Connection: close\r\n\r\n" + data)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_every_user_kind_sends_the_headers_and_the_key(run_locust, tmp_path: Path) -> None:
    server = RecordingServer()
    users = "RestChatUser HealthCheckUser StreamingChatUser WebSocketChatUser PlenaryUser AudioStreamUser"
    try:
        run = run_locust(
            *("--host", server.url, "--user-mix", users, "-u", "6", "-r", "6", "-t", "3s", "--think-time", "0.5"),
            *("--header", "X-Custom: ${CUSTOM_VALUE}", "--header", "X-Plain: plain-value"),
            *("--api-key", API_KEY, "--api-key-header", "X-Key: Token", "--ws-header", f"X-Ws: {WS_ONLY}"),
            *("--plenary-protocol", "channels", "--plenary-path", "/plenary/{room}", "--register-path", "none"),
            "--skip-probe",  # the server refuses every request: the probe would rightly stop the start
            env=clean_env(CUSTOM_VALUE=CUSTOM_SECRET),  # a variable name not masked for its own sake
        )
    finally:
        server.close()
    seen = [(path.split("?")[0], headers) for path, headers in server.seen if path]  # the host check sends nothing
    paths = {path for path, _ in seen}
    # REST, health, streaming, WebSocket chat, audio call, plenary room
    every_kind = {"/api/chat", "/healthcheck", "/v1/chat/completions", "/ws/chat", "/ws/audio"}
    assert every_kind <= paths and any(path.startswith("/plenary/") for path in paths), f"{paths}\n{run.output}"
    for path, headers in seen:
        assert headers.get("x-custom") == CUSTOM_SECRET, path
        assert headers.get("x-plain") == "plain-value", path
        assert headers.get("x-key") == f"Token {API_KEY}", path
        assert "authorization" not in headers, path  # the key went where --api-key-header says
        assert (headers.get("x-ws") == WS_ONLY) == ("upgrade" in headers), path  # --ws-header: handshakes only
    assert {path for path, headers in seen if "upgrade" in headers} >= {"/ws/chat", "/ws/audio"}
    outputs = {"output": run.output.encode(), **files_of(run.report_dir)}
    assert "rejected ***" in run.output  # the echoed values were there to leak
    for secret in (API_KEY, CUSTOM_SECRET, WS_ONLY):
        assert not [where for where, data in outputs.items() if secret.encode() in data], secret


def test_a_header_naming_an_unset_variable_stops_the_start(run_locust) -> None:
    run = run_locust(
        "--header", "X-Api-Key: ${NOT_SET_ANYWHERE}", "-u", "1", "-t", "1s", "--host", "http://127.0.0.1:9"
    )
    assert run.returncode == 2
    assert "--header: ${NOT_SET_ANYWHERE} is not set" in one_error_line(run.output)


def test_the_sign_in_token_wins_then_ws_header_then_header_then_the_api_key() -> None:
    options = Namespace(header=["authorization: from-header", "X-A: 1"], api_key="k" * 12, ws_header=["X-A: 2"])
    assert request_headers(options) == {"authorization": "from-header", "X-A": "1"}
    assert ws_headers(options) == ("authorization: from-header", "X-A: 2")
    assert ws_headers(options, authorization="Bearer signed") == ("X-A: 2", "Authorization: Bearer signed")
    assert request_headers(Namespace(api_key="key-given-here")) == {"Authorization": "Bearer key-given-here"}
    assert merged({"A": "1", "b": "2"}, {"B": "3"}) == {"A": "1", "B": "3"}


def test_a_bot_behind_an_api_key_is_load_tested_from_the_readme(tmp_path: Path) -> None:
    """The issue's first "Done when": the README's command, 0 failures, the key in no output."""
    bot = KeyedBot()
    report_dir = tmp_path / "run"
    try:
        result = subprocess.run(
            [
                *(*RUN_TESTS, "load", "--host", bot.url, "--chat-path", "/v2/ask", "--question-field", "query"),
                *("--answer-field", "result.text", "--header", "X-Api-Key: ${BOT_KEY}", "--duration", "3s"),
                *("--users", "2", "--think-time", "0.2", "--report-dir", str(report_dir), "--skip-report-page"),
            ],
            env=clean_env(BOT_KEY=BOT_KEY),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        bot.close()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = json.loads((report_dir / "summary.json").read_text())
    asked = [row for key, row in summary["requests"].items() if key.startswith("POST chat:")]
    assert sum(row["count"] for row in asked) >= 2 and sum(row["failures"] for row in asked) == 0, summary["requests"]
    outputs = {"output": output.encode(), **files_of(report_dir)}
    assert not [where for where, data in outputs.items() if BOT_KEY.encode() in data]


def test_an_api_key_wins_over_credentials_in_the_host(run_locust) -> None:
    # Locust turns a URL's user:password into Basic auth and sets it over any Authorization a request carries.
    server = RecordingServer()
    try:
        host = server.url.replace("http://", "http://bob:url-planted-pw@")
        run_locust("--host", host, "--user-mix", "RestChatUser", "-u", "1", "-t", "2s", "--api-key", API_KEY)
    finally:
        server.close()
    sent = {headers.get("authorization") for path, headers in server.seen if path}
    assert sent == {f"Bearer {API_KEY}"}, sent
