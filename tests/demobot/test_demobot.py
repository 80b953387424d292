"""Tests of demobot, the built-in demo chatbot: real processes on loopback, real HTTP, true timings."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from demobot.launcher import REPO_ROOT, DemobotProcess
from tests.demobot.requests_to_bot import MESSAGES, TIMEOUT_S, post

pytestmark = pytest.mark.timeout(60)

FAST_FLAGS = ("--ttft-ms", "20", "--token-ms", "2", "--answer-tokens", "12", "--seed", "7")
SEEDED_EMAIL, SEEDED_PASSWORD = "alice@example.com", "wonderland"


@pytest.fixture(scope="module")
def fast_bot() -> Iterator[DemobotProcess]:
    with DemobotProcess(*FAST_FLAGS) as bot:
        yield bot


@pytest.fixture(scope="module")
def auth_bot() -> Iterator[DemobotProcess]:
    with DemobotProcess(*FAST_FLAGS, "--auth", "required", "--account", f"{SEEDED_EMAIL}:{SEEDED_PASSWORD}") as bot:
        yield bot


def login(bot: DemobotProcess, email: str, password: str) -> str:
    response = post(bot, "/api/auth/login", {"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def sse_events(text: str) -> list[str]:
    """The data payloads of an SSE body, checking every event is a single `data:` line."""
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    assert all(event.startswith("data: ") and "\n" not in event for event in events), events
    return [event[len("data: ") :] for event in events]


def run_demobot(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demobot", *flags], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20
    )


# ---------------------------------------------------------------- meta routes


def test_healthcheck_docs_and_stats(fast_bot: DemobotProcess) -> None:
    assert requests.get(f"{fast_bot.url}/healthcheck", timeout=TIMEOUT_S).json() == {"status": "ok"}

    docs = requests.get(f"{fast_bot.url}/docs", timeout=TIMEOUT_S)
    assert docs.headers["Content-Type"].startswith("text/html")
    for path in ("/healthcheck", "/docs", "/stats", "/api/auth/register", "/api/auth/login", "/api/chat"):
        assert f"<code>{path}</code>" in docs.text
    assert "/v1/models" in docs.text and "/v1/chat/completions" in docs.text
    assert "OpenAI-compatible chat completion" in docs.text  # descriptions come from the handlers' docstrings

    before = fast_bot.stats()
    for key in ("active", "queued", "served", "rejected", "max_active", "max_queued"):
        assert key in before
    for key in ("logins", "registrations", "errors_injected", "requests"):
        assert key in before
    assert post(fast_bot, "/api/chat", {"message": "count me"}).status_code == 200
    after = fast_bot.stats()
    assert after["requests"] == before["requests"] + 1
    assert after["served"] == before["served"] + 1
    assert after["active"] == 0 and after["queued"] == 0


# ---------------------------------------------------------------- auth


def test_register_login_and_chat_with_bearer_token(auth_bot: DemobotProcess) -> None:
    created = post(auth_bot, "/api/auth/register", {"email": "bob@example.com", "password": "builder"})
    assert created.status_code == 201
    assert created.json()["email"] == "bob@example.com" and created.json()["user_id"]
    again = post(auth_bot, "/api/auth/register", {"email": "bob@example.com", "password": "other"})
    assert again.status_code == 409
    assert post(auth_bot, "/api/auth/register", {"email": "carol@example.com"}).status_code == 400

    response = post(auth_bot, "/api/auth/login", {"email": "bob@example.com", "password": "builder"})
    assert response.status_code == 200
    grant = response.json()
    assert grant["token_type"] == "bearer" and grant["expires_in"] == 3600 and len(grant["access_token"]) >= 20

    chat = post(auth_bot, "/api/chat", {"message": "hello with a token"}, token=grant["access_token"])
    assert chat.status_code == 200 and chat.json()["answer"]
    models = requests.get(
        f"{auth_bot.url}/v1/models", headers={"Authorization": f"Bearer {grant['access_token']}"}, timeout=TIMEOUT_S
    )
    assert models.status_code == 200

    seeded_token = login(auth_bot, SEEDED_EMAIL, SEEDED_PASSWORD)
    assert post(auth_bot, "/api/chat", {"message": "seeded account"}, token=seeded_token).status_code == 200
    assert auth_bot.stats()["logins"] >= 2


def test_missing_or_unknown_token_is_401(auth_bot: DemobotProcess) -> None:
    for token in (None, "not-a-real-token"):
        response = post(auth_bot, "/api/chat", {"message": "no entry"}, token=token)
        assert response.status_code == 401
        assert response.json() == {"error": "missing or invalid token"}
    completions = post(auth_bot, "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
    assert completions.status_code == 401
    assert requests.get(f"{auth_bot.url}/v1/models", timeout=TIMEOUT_S).status_code == 401
    assert requests.get(f"{auth_bot.url}/healthcheck", timeout=TIMEOUT_S).status_code == 200


def test_wrong_password_and_unknown_email_are_401(auth_bot: DemobotProcess) -> None:
    wrong = post(auth_bot, "/api/auth/login", {"email": SEEDED_EMAIL, "password": "not-it"})
    assert wrong.status_code == 401 and "access_token" not in wrong.json()
    unknown = post(auth_bot, "/api/auth/login", {"email": "nobody@example.com", "password": "x"})
    assert unknown.status_code == 401


def test_token_expires_after_ttl() -> None:
    with DemobotProcess("--auth", "required", "--token-ttl", "1", "--account", "a@b.c:pw", "--ttft-ms", "0") as bot:
        grant = post(bot, "/api/auth/login", {"email": "a@b.c", "password": "pw"}).json()
        assert grant["expires_in"] == 1
        assert post(bot, "/api/chat", {"message": "still fresh"}, token=grant["access_token"]).status_code == 200
        time.sleep(1.2)
        expired = post(bot, "/api/chat", {"message": "too late"}, token=grant["access_token"])
        assert expired.status_code == 401
        assert expired.json() == {"error": "token expired"}


def test_auto_register_on_first_login() -> None:
    with DemobotProcess("--auth", "required", "--auto-register", "--ttft-ms", "0") as bot:
        token = login(bot, "new@example.com", "first-password")
        assert post(bot, "/api/chat", {"message": "auto"}, token=token).status_code == 200
        wrong = post(bot, "/api/auth/login", {"email": "new@example.com", "password": "another"})
        assert wrong.status_code == 401
        assert bot.stats()["registrations"] == 1


# ---------------------------------------------------------------- /api/chat


def test_chat_answer_and_session_continuity(fast_bot: DemobotProcess) -> None:
    first = post(fast_bot, "/api/chat", {"message": "What is the capital of France?"})
    assert first.status_code == 200
    body = first.json()
    assert body["answer"].startswith("What is the")
    assert body["tokens"] == 12 == len(body["answer"].split())
    assert body["turn"] == 1 and body["session_id"]
    assert first.headers["X-Request-Id"] == body["request_id"]

    second = post(fast_bot, "/api/chat", {"message": "And of Spain?", "session_id": body["session_id"]}).json()
    assert second["session_id"] == body["session_id"] and second["turn"] == 2
    third = post(fast_bot, "/api/chat", {"message": "Thanks", "session_id": body["session_id"]}).json()
    assert third["turn"] == 3

    mine = post(fast_bot, "/api/chat", {"message": "hi", "session_id": "my-own-session"}).json()
    assert mine["session_id"] == "my-own-session" and mine["turn"] == 1


def test_chat_rejects_bad_input(fast_bot: DemobotProcess) -> None:
    bad_json = requests.post(f"{fast_bot.url}/api/chat", data=b"{not json", timeout=TIMEOUT_S)
    assert bad_json.status_code == 400 and "error" in bad_json.json()
    for body in ({}, {"message": ""}, {"message": "   "}, {"message": 42}, ["message"]):
        assert post(fast_bot, "/api/chat", body).status_code == 400, body


# ---------------------------------------------------------------- /v1/chat/completions


def test_completions_non_streaming_usage(fast_bot: DemobotProcess) -> None:
    response = post(fast_bot, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "gpt-4o-mini" and isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    assert choice["message"]["content"].startswith("Tell me about")
    assert body["usage"] == {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
    assert response.headers["X-Request-Id"] in body["id"]

    capped = post(fast_bot, "/v1/chat/completions", {"messages": MESSAGES, "max_completion_tokens": 4}).json()
    assert capped["usage"]["completion_tokens"] == 4 == len(capped["choices"][0]["message"]["content"].split())
    assert capped["choices"][0]["finish_reason"] == "length"
    assert capped["model"] == "demobot"

    models = requests.get(f"{fast_bot.url}/v1/models", timeout=TIMEOUT_S).json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["demobot"]


def test_completions_reject_bad_input(fast_bot: DemobotProcess) -> None:
    bad_json = requests.post(f"{fast_bot.url}/v1/chat/completions", data=b"nope", timeout=TIMEOUT_S)
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["type"] == "invalid_request_error" and bad_json.json()["error"]["message"]
    for body in ({}, {"messages": []}, {"messages": MESSAGES, "max_tokens": 0}):
        response = post(fast_bot, "/v1/chat/completions", body)
        assert response.status_code == 400 and set(response.json()["error"]) == {"message", "type"}, body


@pytest.mark.parametrize("include_usage", [False, True])
def test_streaming_wire_format(fast_bot: DemobotProcess, include_usage: bool) -> None:
    request = {"messages": MESSAGES, "stream": True, "max_tokens": 5, "model": "m"}
    if include_usage:
        request["stream_options"] = {"include_usage": True}
    response = post(fast_bot, "/v1/chat/completions", request)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    request_id = response.headers["X-Request-Id"]
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk" and chunk["id"] == f"chatcmpl-{request_id}"
        assert chunk["model"] == "m" and isinstance(chunk["created"], int)

    role, *tokens, finish = chunks[:-1] if include_usage else chunks
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(tokens) == 5
    for token in tokens:
        (choice,) = token["choices"]
        assert set(choice["delta"]) == {"content"} and choice["delta"]["content"].strip()
        assert choice["finish_reason"] is None
    assert finish["choices"][0]["delta"] == {} and finish["choices"][0]["finish_reason"] in ("stop", "length")
    if include_usage:
        usage_chunk = chunks[-1]
        assert usage_chunk["choices"] == []
        assert usage_chunk["usage"] == {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
    else:
        assert all("usage" not in chunk for chunk in chunks)

    streamed = "".join(token["choices"][0]["delta"]["content"] for token in tokens)
    whole = post(fast_bot, "/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 5}).json()
    assert streamed == whole["choices"][0]["message"]["content"]


# ---------------------------------------------------------------- true timings


@pytest.mark.parametrize(
    ("flags", "mentions"),
    [
        (("--slots", "0"), "--slots"),
        (("--error-rate", "2"), "--error-rate"),
        (("--auth", "sometimes"), "--auth"),
        (("--account", "no-colon"), "--account"),
    ],
)
def test_bad_flag_exits_2_with_one_line(flags: tuple[str, ...], mentions: str) -> None:
    result = run_demobot(*flags)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"demobot: error: {mentions} ")


def test_launcher_reports_a_failed_start() -> None:
    with pytest.raises(RuntimeError, match="--slots must be a positive integer"):
        DemobotProcess("--slots", "0").start()


def test_sigterm_exits_cleanly() -> None:
    bot = DemobotProcess("--ttft-ms", "0").start()
    assert bot.url is not None and bot.pid is not None
    assert bot.stop() == 0
    assert bot.returncode == 0


# ---------------------------------------------------------------- capacity model (pure logic)


def test_provider_routes_stream_in_their_own_framing(fast_bot: DemobotProcess) -> None:
    question = [{"role": "user", "content": "Tell me about load testing"}]
    messages = requests.post(
        f"{fast_bot.url}/v1/messages",
        json={"model": "m", "max_tokens": 50, "messages": question, "stream": True},
        headers={"anthropic-version": "2023-06-01"},
        timeout=TIMEOUT_S,
    )
    assert messages.status_code == 200 and b"event: message_stop" in messages.content
    assert b'"text_delta","text":"Tell"' in messages.content and b"event: ping" in messages.content
    assert post(fast_bot, "/v1/messages", {"messages": question}).status_code == 400  # no anthropic-version
    responses = post(fast_bot, "/v1/responses", {"model": "m", "input": "Tell me", "stream": True})
    assert b'"response.output_text.delta","delta":"Tell"' in responses.content
    assert b"event: response.completed" in responses.content
    lines = post(fast_bot, "/api/chat", {"model": "m", "messages": question}).text.splitlines()
    assert json.loads(lines[0])["message"]["content"] == "Tell" and json.loads(lines[-1])["done"] is True
