"""The fault matrix: every user class against a demobot that misbehaves on purpose (demobot/faults.py).

Each run injects all the faults that apply to one user class at once, each at a share of the requests,
and checks that the user names every fault as a failure of its own, keeps to its timeouts (a
``slow-headers`` answer would take --fault-delay, 20 s), never crashes, and keeps working afterwards.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pytest
import requests

from demobot.faults import DEFAULT_GROUPS, Fault, parse_fault, pick_fault
from tests.conftest import LocustRun

pytestmark = pytest.mark.timeout(90)

FAULT_DELAY = ("--fault-delay", "20")
"""A slow-headers answer would take 20 s: every user must give up long before."""

SLOWEST_MS = 8000
"""No exchange may take this long: each one is bounded by a timeout of at most a second or two."""

RUN_OVERHEAD_S = 20
"""Locust's start and stop on a busy machine, on top of -t."""


def faults(rate: float, *kinds: str, routes: str = "") -> tuple[str, ...]:
    """``--fault KIND:RATE[@ROUTES]`` for each kind."""
    suffix = f"@{routes}" if routes else ""
    return tuple(arg for kind in kinds for arg in ("--fault", f"{kind}:{rate}{suffix}"))


@dataclass(frozen=True)
class FaultCase:
    """One user class (or two) against a demobot with every fault that applies to it."""

    bot_flags: tuple[str, ...]
    user_args: tuple[str, ...]
    run_s: int
    expected: dict[str, set[str]]
    """Request row (or row-name prefix) → the failure names that must all show up on it."""
    work: str
    """Prefix of the rows that show the users kept working (successes late in the run)."""
    tolerated: set[str] = field(default_factory=set)
    """Other failure names a fault may cause on the way (a login after a failed registration)."""
    reconnects: str = ""
    """Row whose count must exceed the user count: lost connections were opened again."""
    users: int = 4
    late_share: float = 1 / 3
    """The closing share of the run in which the users must still succeed."""


HTTP_KINDS = ("reset", "malformed", "slow-headers", "500", "502", "503", "429")
STREAM_KINDS = (
    "cut", "error-event", "empty", "no-done", "malformed", "stall", "reset", "slow-headers", "500", "502", "503", "429",
)  # fmt: skip
STATUS_NAMES = {
    "HTTP 500 Internal Server Error",
    "HTTP 502 Bad Gateway",
    "HTTP 503 Service Unavailable",
    "HTTP 429 Too Many Requests",
}
AUDIO_BOT = (
    "--audio-reply-ms", "250", "--audio-endpoint-ms", "150", "--audio-reply-len-ms", "300", "--audio-lead-ms", "100",
)  # fmt: skip

CASES = {
    # A reset before the answer reads as "connection closed early": geventhttpclient cannot tell a reset
    # from a close there. It retries a GET on a closed connection, so health checks get no reset here.
    "rest-and-health": FaultCase(
        bot_flags=(
            "--ttft-ms", "5", "--token-ms", "0", "--answer-tokens", "5", *faults(0.08, *HTTP_KINDS),
            *faults(0.25, "503", "429", "slow-headers", routes="health"),
        ),
        user_args=(
            "--user-mix", "RestChatUser:1,HealthCheckUser:5", "--think-time", "0", "--request-timeout", "0.5",
        ),
        run_s=5,
        users=24,
        expected={
            "POST chat:": {"connection closed early", "answer is not JSON", "timeout", *STATUS_NAMES},
            "GET health": {"HTTP 503 Service Unavailable", "HTTP 429 Too Many Requests", "timeout"},
        },
        work="POST chat:",
    ),
    "streaming": FaultCase(
        bot_flags=("--ttft-ms", "10", "--token-ms", "2", "--answer-tokens", "8", *faults(0.06, *STREAM_KINDS)),
        user_args=(
            "--user-mix", "StreamingChatUser", "--think-time", "0", "--first-token-timeout", "0.4",
            "--stream-timeout", "0.8",
        ),
        run_s=5,
        expected={
            "E2E chat:": {
                "stream cut off: connection reset",
                "error in stream: injected fault: the model crashed",
                "no content in the answer",
                "stream ended before the server said it was done",
                "answer is not JSON",
                "stream timeout",
                "connection closed early",
                "first token timeout",
                *STATUS_NAMES,
            }
        },
        work="E2E chat:",
    ),
    "websocket-chat": FaultCase(
        bot_flags=(
            "--ttft-ms", "10", "--token-ms", "2", "--answer-tokens", "4", *faults(0.15, "ws-close", "ws-silent"),
        ),
        user_args=("--user-mix", "WebSocketChatUser", "--think-time", "0", "--reply-timeout", "0.5"),
        run_s=4,
        expected={"WSR ws:": {"connection reset", "reply timeout"}},
        tolerated={"connection dropped"},
        work="WSR ws:",
        reconnects="WS connect",
    ),
    "plenary": FaultCase(
        bot_flags=(
            *faults(0.1, "ws-close"), *faults(0.25, "ws-silent"), *faults(0.6, "503", routes="auth"),
        ),
        user_args=(
            "--user-mix", "PlenaryUser", "--chat-interval", "0.1", "--drain-time", "0.3", "--request-timeout", "0.5",
        ),
        run_s=5,
        users=8,
        expected={
            "WS join": {"join timeout"},
            "WS connection": {"connection reset"},
            "POST register": {"HTTP 503 Service Unavailable"},
        },
        tolerated={
            "connection dropped",
            "login failed: HTTP 503 Service Unavailable",
            "login failed: HTTP 401 Unauthorized",  # a login right after a failed registration
        },
        work="FANOUT ",
        reconnects="WS connect",
    ),
    "audio": FaultCase(
        bot_flags=(*AUDIO_BOT, *faults(0.3, "ws-close"), *faults(0.45, "ws-silent")),
        user_args=(
            "--user-mix", "AudioStreamUser", "--think-time", "0", "--response-timeout", "1",
            "--response-gap-ms", "200",
        ),
        run_s=6,
        users=12,
        expected={"CALL audio:raw": {"connection reset", "response audio timeout"}},
        work="CALL audio:raw",
        reconnects="CONNECT audio:raw",
        late_share=0.6,  # a call takes 2 s: the last ones are cut short by the end of the run
    ),
}  # fmt: skip


def failures_by_row(run: LocustRun) -> dict[str, Counter[str]]:
    rows: dict[str, Counter[str]] = {}
    for failure in run.summary["failures"]:
        rows.setdefault(failure["request"], Counter())[failure["error"]] += failure["occurrences"]
    return rows


def late_successes(run: LocustRun, prefix: str, share: float) -> int:
    """Successful exchanges of rows named ``prefix...`` that started in the closing ``share`` of the run."""
    with (run.report_dir / "requests.csv").open() as file:
        rows = [row for row in csv.DictReader(file) if row["timestamp"]]
    starts = [datetime.fromisoformat(row["timestamp"]).timestamp() for row in rows]
    late = max(starts) - (max(starts) - min(starts)) * share
    return sum(
        1
        for row, start in zip(rows, starts, strict=True)
        if f"{row['type']} {row['name']}".startswith(prefix) and row["status"] == "ok" and start >= late
    )


@pytest.mark.parametrize("case_name", list(CASES))
def test_every_user_names_each_fault_and_keeps_going(demobot, run_locust, short_wav, case_name: str) -> None:
    case = CASES[case_name]
    bot = demobot(*case.bot_flags, *FAULT_DELAY)
    audio = ("--audio-file", short_wav) if "AudioStreamUser" in case.user_args else ()
    started = time.monotonic()
    run = run_locust(
        "--host", bot.url, *case.user_args, *audio, "-u", str(case.users), "-r", "100", "-t", f"{case.run_s}s",
        timeout=case.run_s + 60,
    )  # fmt: skip
    elapsed = time.monotonic() - started

    # Failures, not a crash: exit code 1, no traceback, and the run ended on time.
    assert run.returncode == 1, run.output
    assert "Traceback" not in run.output, run.output
    assert elapsed < case.run_s + RUN_OVERHEAD_S
    # Every fault has its own clear name, and nothing else went wrong.
    by_row = failures_by_row(run)
    for prefix, names in case.expected.items():
        seen: Counter[str] = sum((counts for row, counts in by_row.items() if row.startswith(prefix)), Counter())
        assert names <= set(seen), (prefix, names - set(seen), by_row)
    allowed = set().union(*case.expected.values(), case.tolerated)
    unexpected = {name for counts in by_row.values() for name in counts} - allowed
    assert not unexpected, by_row
    # Every exchange kept to its timeout: none waited out the 20 s slow-headers.
    requests_rows = run.summary["requests"]
    assert all((row["slowest_ms"] or 0) < SLOWEST_MS for row in requests_rows.values()), requests_rows
    # The users kept working after their faults, and opened lost connections again.
    assert late_successes(run, case.work, case.late_share) >= 2, requests_rows
    if case.reconnects:
        assert requests_rows[case.reconnects]["count"] > case.users, requests_rows


# --- each route group gets its own faults --------------------------------------------------------


def test_route_groups_get_only_their_faults(demobot) -> None:
    bot = demobot(
        "--ttft-ms", "5", "--token-ms", "0", "--answer-tokens", "3", "--retry-after", "7", "--fault", "503@chat",
        "--fault", "429@completions", "--fault", "reset@auth", "--fault", "slow-headers@health",
        "--fault-delay", "0.3",
    )  # fmt: skip
    url = bot.url
    bot_id = requests.post(f"{url}/api/bots", json={"name": "faulty"}, timeout=5).json()["id"]
    assert requests.post(f"{url}/api/bots/{bot_id}/chat", json={"message": "hi"}, timeout=5).status_code == 503
    assert requests.post(f"{url}/api/chat", json={"message": "hi"}, timeout=5).status_code == 503
    completion = requests.post(f"{url}/v1/chat/completions", json={"messages": [{"content": "hi"}]}, timeout=5)
    assert completion.status_code == 429 and completion.headers["Retry-After"] == "7"
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{url}/api/auth/register", json={"email": "a@example.com", "password": "pw"}, timeout=5)
    started = time.monotonic()
    assert requests.get(f"{url}/healthcheck", timeout=5).json() == {"status": "ok"}
    assert time.monotonic() - started >= 0.3
    assert "503:1@chat" in requests.get(f"{url}/docs", timeout=5).text


def test_malformed_answers_are_not_json(demobot) -> None:
    bot = demobot("--ttft-ms", "5", "--token-ms", "0", "--fault", "malformed")
    for path, body in (("/api/chat", {"message": "hi"}), ("/v1/chat/completions", {"messages": [{"content": "hi"}]})):
        answer = requests.post(f"{bot.url}{path}", json=body, timeout=5)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
        with pytest.raises(ValueError):
            answer.json()


# --- the --fault option ---------------------------------------------------------------------------


def test_fault_specs_parse_with_rate_and_routes() -> None:
    assert parse_fault("cut") == Fault("cut", 1.0, ("completions",))
    assert parse_fault("503:0.25") == Fault("503", 0.25, ("chat", "completions"))
    assert parse_fault("ws-close:0.5") == Fault("ws-close", 0.5, ("ws", "plenary", "audio"))
    assert parse_fault("429:0.1@health,auth") == Fault("429", 0.1, ("health", "auth"))
    assert set(parse_fault("reset").groups) <= set(DEFAULT_GROUPS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("explode", "unknown fault 'explode'"),
        ("503:1.5", "the rate of 503 must be a number from 0 to 1"),
        ("503:often", "the rate of 503 must be a number from 0 to 1"),
        ("503@kitchen", "unknown route group 'kitchen'"),
        ("ws-close@chat", "ws-close does not apply to chat; it applies to ws, plenary, audio"),
        ("malformed@health", "malformed does not apply to health"),
    ],
)
def test_bad_fault_specs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_fault(text)


def test_each_request_draws_once_per_fault_that_applies() -> None:
    configured = (parse_fault("503:0.5"), parse_fault("ws-silent:0.5"), parse_fault("reset@auth"))
    rng = random.Random(1)
    picks = Counter(pick_fault(configured, "chat", ("503", "reset"), rng) for _ in range(4000))
    assert set(picks) == {"503", None} and 1800 < picks["503"] < 2200
    assert pick_fault(configured, "auth", ("503", "reset"), rng) == "reset"
    assert pick_fault(configured, "health", ("503", "reset"), rng) is None
