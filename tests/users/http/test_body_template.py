"""--body-template and --body-format: the question reaches the bot in the bot's own shape (a Rasa-like bot of the
tests' own records every body it gets and answers a list of messages, read with --answer-field 0.text)."""

from __future__ import annotations

import json
import socket
import threading
from urllib.parse import parse_qs

from tests.conftest import failure_counts
from tests.loopback_server import LoopbackServer
from tests.users.common.test_request_headers import request_head


class RasaLikeBot(LoopbackServer):
    """POST /webhooks/rest/webhook with a body → ``[{"recipient_id": ..., "text": "echo: <message>"}]``."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        super().__init__()

    def answer_request(self, connection: socket.socket, request: bytes) -> None:
        _, path, headers = request_head(connection, request)
        data = request.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in request else b""
        while len(data) < int(headers.get("content-length", 0)):
            data += connection.recv(65536)
        if path != "/webhooks/rest/webhook":
            connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        body = data.decode()
        with self.lock:
            self.bodies.append((headers.get("content-type", ""), body))
        message = json.loads(body)["message"] if body.startswith("{") else parse_qs(body)["message"][0]
        answer = json.dumps([{"recipient_id": "u", "text": f"echo: {message[:20]}"}]).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(answer)}\r\n"
        connection.sendall(head.encode() + b"Connection: close\r\n\r\n" + answer)


def ask(run_locust, *args: str) -> tuple[RasaLikeBot, object]:
    bot = RasaLikeBot()
    try:
        run = run_locust(
            "--host", bot.url, "--user-mix", "RestChatUser", "-u", "2", "-r", "2", "-t", "3s", "--think-time", "0.1",
            "--chat-path", "/webhooks/rest/webhook", "--answer-field", "0.text", "--skip-host-check", *args,
        )  # fmt: skip
    finally:
        bot.close()
    assert run.returncode == 0 and not failure_counts(run), run.output
    assert run.summary["totals"]["count"] >= 4
    return bot, run


def test_a_json_template_carries_the_question_the_conversation_and_its_history(run_locust) -> None:
    template = '{"sender": "{user}", "message": "{prompt}", "meta": {"id": "{session_id}", "turns": "{history}"}}'
    bot, _ = ask(run_locust, "--body-template", template, "--conversation-turns", "2")
    bodies = [json.loads(body) for kind, body in bot.bodies if kind.startswith("application/json")]
    assert len(bodies) == len(bot.bodies) >= 4
    assert {body["sender"] for body in bodies} <= {str(n) for n in range(1000)} and all(b["message"] for b in bodies)
    # Each conversation's second question carries the first and its answer; a new conversation starts empty.
    histories = [len(body["meta"]["turns"]) for body in bodies]
    assert set(histories) == {0, 2}, histories
    second = next(body for body in bodies if body["meta"]["turns"])
    asked, answered = second["meta"]["turns"]
    assert asked["role"] == "user" and answered == {"role": "assistant", "content": f"echo: {asked['content'][:20]}"}
    assert second["meta"]["id"] and all(body["meta"]["id"] for body in bodies)


def test_a_flat_template_can_be_sent_form_encoded(run_locust) -> None:
    bot, _ = ask(run_locust, "--body-template", '{"sender": "u{user}", "message": "{prompt}"}', "--body-format", "form")
    assert bot.bodies and all(kind == "application/x-www-form-urlencoded" for kind, _ in bot.bodies)
    fields = [parse_qs(body) for _, body in bot.bodies]
    assert all(set(f) == {"sender", "message"} and f["sender"][0].startswith("u") for f in fields), fields


def test_the_rasa_preset_load_tests_demobots_rasa_channel(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "20", "--token-ms", "1")
    run = run_locust(
        "--host", bot.url, "--user-mix", "RestChatUser", "-u", "2", "-r", "2", "-t", "3s", "--think-time", "0.1",
        "--api", "rasa",
    )  # fmt: skip
    assert run.returncode == 0 and not failure_counts(run), run.output
    totals, seen = run.summary["totals"], bot.stats()["requests"] - 1  # each question, and the probe's before
    assert 4 <= totals["count"] <= seen <= totals["count"] + totals["cut_short"], (totals, seen)
