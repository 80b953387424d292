"""Mistakes a user can make end in one clear line and exit code 2, never a traceback, before any load is sent."""

from __future__ import annotations

import subprocess
import sys
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import ROOT, clean_env, one_error_line

LOCUST = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "-u", "1", "-t", "2s"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "broken.jsonl").write_text('{"prompt": "fine"}\n{"prompt": "oops"\n')
    (folder / "no_prompts").mkdir()
    (folder / "accounts.csv").write_text("name,secret\nx,y\n")
    (folder / "no_accounts.csv").write_text("email,password\n")
    (folder / "not_a.wav").write_text("just text")
    with wave.open(str(folder / "8bit.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(16000)
        wav.writeframes(b"\x80" * 1600)
    (folder / "typo.conf").write_text("think-tme = 1 - 3\n")  # a misspelt key, a value with spaces
    return folder


BAD_LOCUST_INPUTS = [
    # (extra arguments, expected words of the one error line)
    # prompts, think time, seeding, the run itself
    (["--prompts", "{bad}/missing.jsonl"], "--prompts: no such file or folder"),
    (["--prompts", "{bad}/broken.jsonl"], "broken.jsonl:2: malformed JSON"),
    (["--prompts", "{bad}/no_prompts"], "--prompts: the folder"),
    (["--think-time", "3-1"], "--think-time: '3-1' must be"),
    (["--think-time", "soon"], "--think-time: 'soon' is not a number"),
    (["--request-timeout", "0"], "--request-timeout: must be greater than zero"),
    (["--request-timeout", "soon"], "argument --request-timeout: invalid float value"),
    (["--request-timeout", "nan"], "--request-timeout: nan is not a finite number"),
    (["--request-timeout", "inf"], "--request-timeout: inf is not a finite number"),
    (["--stream-timeout", "nan"], "--stream-timeout: nan is not a finite number"),
    (["--think-time", "inf"], "--think-time: 'inf' is not a finite number of seconds"),
    (["--slo", "p95<1e999"], "--slo 'p95<1e999': 1e999 is not a finite threshold"),
    (["--prompt-weights", "simple=lots"], "--prompt-weights: bad entry"),
    (["--seed", "x1"], "--seed: 'x1' is not a whole number"),
    (["--test-type", "../elsewhere"], "--test-type: '../elsewhere' is not a name"),
    (["--report-dir", "{bad}/broken.jsonl/run"], "--report-dir: cannot create"),
    (["-u", "-1"], "--users (-u): must be 0 or more"),
    (["--user-mix", "GhostUser"], "--user-mix: unknown user class 'GhostUser'"),
    (["--user-mix", "RestChatUser:0"], "--user-mix: weight of RestChatUser must be"),
    (["--user-mix", ""], "--user-mix: empty"),
    (["--env", "nosuch"], "--env nosuch: no file"),
    (["--config", "{bad}/nope.conf"], "Unable to open config file"),
    (["--config", "{bad}/typo.conf"], "unknown setting 'think-tme'; did you mean think-time?"),
    # sign-in and accounts
    (["--auth", "login"], "--auth login needs LOGIN_EMAIL and LOGIN_PASSWORD"),
    (["--auth", "magic"], "argument --auth: invalid choice: 'magic'"),
    (["--auth", "login", "--accounts", "{bad}/missing.csv"], "--accounts: cannot read"),
    (["--auth", "login", "--accounts", "{bad}/accounts.csv"], "accounts CSV needs a header row"),
    (["--auth", "login", "--accounts", "{bad}/no_accounts.csv"], "no_accounts.csv lists no accounts"),
    # REST, streaming and bots
    (["--conversation-turns", "0"], "--conversation-turns: must be 1 or more"),
    (["--chat-path", "api/chat"], "--chat-path: 'api/chat' is not a path"),
    (["--chat-path", "/api/bots/{{bot_id}}/chat"], "give the bots with --bot-ids"),
    (["--stream-format", "grpc"], "argument --stream-format: invalid choice: 'grpc'"),
    (["--stream-path", "v1/chat/completions"], "--stream-path: 'v1/chat/completions' is not a path"),
    (["--extra-body", "{{top_p: 1}}"], "--extra-body: not valid JSON"),
    # WebSocket chat, plenary and audio
    (["--ws-header", "Authorization Bearer x"], "--ws-header: number 1 is not 'Name: value'"),
    (["--rooms", "0"], "--rooms: must be 1 or more"),
    (["--audio-file", "{bad}/missing.wav"], "--audio-file: no such file"),
    (["--audio-file", "{bad}/not_a.wav"], "not_a.wav is not a PCM WAV file"),
    (["--audio-file", "{bad}/8bit.wav"], "8bit.wav has 8-bit samples; 16-bit PCM is needed"),
    (["--fault-kinds", "drop,explode"], "--fault-kinds: unknown explode"),
    # shapes and SLOs
    (["--shape", "zigzag"], "argument --shape: invalid choice: 'zigzag'"),
    (["--shape", "pid", "--target-latency", "-5"], "--target-latency: must be greater than 0 ms"),
    (["--shape", "pid", "--max-fail-ratio", "2"], "--max-fail-ratio: must be a ratio"),
    (["--shape", "breakpoint", "--slo", "p95<1s", "--settle-time", "40"], "--settle-time (40 s) must be"),
    (["--shape", "stages", "--stages", "60s:10"], "--stages: bad stage '60s:10'"),
    (["--slo", "p97<100"], "--slo 'p97<100': unknown metric p97"),
    (["--slo", "p95=100"], "--slo 'p95=100': expected METRIC[NAME] OP VALUE"),
    (["--slo", "fail_ratio<150"], "fail_ratio is a ratio from 0 to 1"),
]


CONCURRENT_STARTS = 4
"""Bad starts run four at a time: each is a Locust start-up that ends in a second or two, mostly importing."""


@pytest.fixture(scope="module")
def bad_starts(
    demobot_url: str, bad_files: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """Every start of BAD_LOCUST_INPUTS, run at once: case → (its result, the run folder it was given)."""

    def start(case: int, args: list[str]) -> tuple[subprocess.CompletedProcess[str], Path]:
        report_dir = tmp_path_factory.mktemp(f"bad{case}") / "run"
        command = [*LOCUST, "--host", demobot_url, *[a.format(bad=bad_files) for a in args]]
        if "--report-dir" not in args:
            command += ["--report-dir", str(report_dir)]
        result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)
        return result, report_dir

    with ThreadPoolExecutor(CONCURRENT_STARTS) as pool:
        futures = {expected: pool.submit(start, case, args) for case, (args, expected) in enumerate(BAD_LOCUST_INPUTS)}
        return {expected: future.result() for expected, future in futures.items()}


@pytest.mark.parametrize("expected", [expected for _, expected in BAD_LOCUST_INPUTS])
def test_bad_locust_input(bad_starts: dict[str, tuple[subprocess.CompletedProcess[str], Path]], expected: str) -> None:
    result, report_dir = bad_starts[expected]
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in one_error_line(result.stdout + result.stderr)
    assert not report_dir.exists(), "the run folder is made only once every check has passed"


@pytest.fixture(scope="module")
def demobot_url() -> Iterator[str]:
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
    result = subprocess.run([*LOCUST, *args], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert expected.lower() in one_error_line(result.stdout + result.stderr).lower()


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        ("5 minutes", "give seconds or a span like 90s, 5m, 1h30m"),
        ("5x", "give seconds"),
        ("0s", "must be longer than zero"),
    ],
)
def test_bad_run_tests_duration(duration: str, expected: str, tmp_path: Path) -> None:
    """Checked before the demo chatbot starts (other run_tests.py usage errors: tests/scripts/test_run_tests.py)."""
    command = [sys.executable, "scripts/run_tests.py", "smoke", "--duration", duration, "--report-dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"run_tests: error: --duration {duration!r}: {expected}"), result.stderr
    assert "demo chatbot" not in result.stdout


def test_chatbot_url_is_the_default_host(demobot_url: str, tmp_path: Path) -> None:
    command = [*LOCUST, "--report-dir", str(tmp_path), "--user-mix", "HealthCheckUser"]
    result = subprocess.run(
        command, cwd=ROOT, env=clean_env(CHATBOT_URL=demobot_url), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert demobot_url in (tmp_path / "summary.json").read_text()
