"""Mistakes a user can make end in one clear line and exit code 2, never a traceback, before any load is sent."""

from __future__ import annotations

import queue
import subprocess
import sys
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import ROOT, clean_env, one_error_line
from tests.locust_forks import LocustForks

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
    (folder / "nul.conf").write_bytes(b"think-time = 1\n\0\0\n")  # UTF-8, yet binary
    (folder / "binary.csv").write_bytes(bytes(range(256)) * 4)
    (folder / "latin1.csv").write_bytes("email,password\ncaf\xe9@x,pw\n".encode("latin-1"))
    (folder / "big_field.csv").write_text("email,password\n" + "a" * 140_000 + "@x,pw\n")
    (folder / "binary.jsonl").write_bytes(b'{"prompt": "hi"}\n\0\1\2\n')
    line = '{"prompt": "%s"}\n' % ("x" * 1009)  # 1 KB
    (folder / "big.jsonl").write_text(line * 1536)  # 1.5 MB
    (folder / "big_folder").mkdir()
    for half in ("a", "b"):
        (folder / "big_folder" / f"{half}.jsonl").write_text(line * 640)  # 0.625 MB each, 1.25 MB together
    for name, channels, rate in (("stereo.wav", 2, 16000), ("1hz.wav", 1, 1)):
        with wave.open(str(folder / name), "wb") as wav:
            wav.setnchannels(channels)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(b"\1\0" * channels * 1600)
    return folder


BAD_LOCUST_INPUTS = [
    # (extra arguments, expected words of the one error line)
    # prompts, think time, seeding, the run itself
    (["--prompts", "{bad}/missing.jsonl"], "--prompts: no such file or folder"),
    (["--prompts", "{bad}/broken.jsonl"], "broken.jsonl:2: malformed JSON"),
    (["--prompts", "{bad}/no_prompts"], "--prompts: the folder"),
    (["--think-time", "3-1"], "--think-time: '3-1' must be"),
    (["--api-kye=sk-planted-typo-9f3e"], "unrecognized arguments: --api-kye=***"),  # a misspelt flag's secret
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
    (["-u", "0"], "--users (-u) 0: the run would start no user and measure nothing"),
    (["-u", "10000000", "-r", "1000000", "-t", "10s"], "--users (-u) 10000000: all run in one process"),
    (["--shape", "ramp", "--max-users", "50000", "-t", "2s"], "--max-users 50000: all run in one process"),
    (["--max-users-per-process", "0"], "--max-users-per-process: must be 1 or more"),
    (["--user-mix", "GhostUser"], "--user-mix: unknown user class 'GhostUser'"),
    (["--user-mix", "RestChatUser:0"], "--user-mix: weight of RestChatUser must be"),
    (["--user-mix", ""], "--user-mix: empty"),
    (["--env", "nosuch"], "--env nosuch: no file"),
    (["--config", "{bad}/nope.conf"], "Unable to open config file"),
    (["--config", "{bad}/typo.conf"], "unknown setting 'think-tme'; did you mean think-time?"),
    (["--config", "{bad}/nul.conf"], "nul.conf is a binary file, not UTF-8 text"),
    (["--prompts", "{bad}/binary.jsonl"], "binary.jsonl is a binary file, not UTF-8 text"),
    (["--prompts", "{bad}/big.jsonl", "--max-data-file-mb", "1"], "big.jsonl is 1.5 MB, over the 1 MB limit (--max"),
    (["--prompts", "{bad}/big_folder", "--max-data-file-mb", "1"], "big_folder hold 1.25 MB, over the 1 MB limit"),
    # sign-in and accounts
    (["--auth", "login"], "--auth login needs LOGIN_EMAIL and LOGIN_PASSWORD"),
    (["--auth", "magic"], "argument --auth: invalid choice: 'magic'"),
    (["--auth", "login", "--accounts", "{bad}/missing.csv"], "--accounts: cannot read"),
    (["--auth", "login", "--accounts", "{bad}/accounts.csv"], "accounts CSV needs a header row"),
    (["--auth", "login", "--accounts", "{bad}/no_accounts.csv"], "no_accounts.csv lists no accounts"),
    (["--auth", "login", "--accounts", "{bad}/binary.csv"], "binary.csv is a binary file, not UTF-8 text"),
    (["--auth", "login", "--accounts", "{bad}/latin1.csv"], "latin1.csv is not UTF-8 text (byte 0xe9 at offset"),
    (["--auth", "login", "--accounts", "{bad}/big_field.csv"], "big_field.csv:2: a field over 128 KB"),
    # REST, streaming and bots
    (["--conversation-turns", "0"], "--conversation-turns: must be 1 or more"),
    (["--chat-path", "api/chat"], "--chat-path: 'api/chat' is not a path"),
    (["--chat-path", "/api/bots/{{bot_id}}/chat"], "give the bots with --bot-ids"),
    (["--body-template", '{{"q": "hello"}}'], "--body-template: no {prompt} in it"),
    (["--body-template", '{{"q": "{{prompt}} {{name}}"}}'], "--body-template: unknown placeholder {name}"),
    (["--body-template", '{{"q": {{"x": "{{prompt}}"}}}}', "--body-format", "form"], "needs a flat template"),
    (["--body-template", "{{oops"], "--body-template: not valid JSON"),
    (["--chat-path", "/api/bots/{{bot_id}}/chat", "--bot-ids", "@{bad}/binary.csv"], "binary.csv is a binary file"),
    (["--stream-format", "grpc"], "--stream-format 'grpc' is not known; use one of: openai, sse"),
    (["--stream-path", "v1/chat/completions"], "--stream-path: 'v1/chat/completions' is not a path"),
    (["--extra-body", "{{top_p: 1}}"], "--extra-body: not valid JSON"),
    # WebSocket chat, plenary and audio
    (["--ws-header", "Authorization Bearer x"], "--ws-header: number 1 is not 'Name: value'"),
    (["--rooms", "0"], "--rooms: must be 1 or more"),
    (["--audio-file", "{bad}/missing.wav"], "--audio-file: no such file"),
    (["--audio-file", "{bad}/not_a.wav"], "not_a.wav is not a PCM WAV file"),
    (["--audio-file", "{bad}/8bit.wav"], "8bit.wav has 8-bit samples; 16-bit PCM is needed"),
    (["--audio-file", "{bad}/stereo.wav"], "stereo.wav: stereo; give a mono 16-bit PCM WAV"),
    (["--audio-file", "{bad}/1hz.wav"], "1hz.wav: 1 Hz; give a mono 16-bit PCM WAV at 8000-48000 Hz"),
    (["--chunk-ms", "1e9"], "--chunk-ms: 1e+09 ms of audio per frame; give 1-1000 ms"),
    (["--chunk-size", "1e9"], "--chunk-size: 1e+09 KB is 3.2e+10 ms of audio per frame"),
    (["--barge-in-rate", "0.5"], "--barge-in-rate: the caller speaks over an answer with its next turn"),
    (["--barge-in-after-ms", "inf"], "--barge-in-after-ms: inf is not a finite number"),
    (["--interval", "1e12"], "--interval: 1e+12 ms between frames; give at most 60000 ms"),
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


FORK_SERVERS = 2
"""Bad starts run two at a time, each forked from a process that has imported Locust and Chatswarm already
(tests/locust_forks.py): a start then costs its checks, not a second of imports."""


@pytest.fixture(scope="module")
def bad_starts(
    demobot_url: str, bad_files: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """Every start of BAD_LOCUST_INPUTS: case → (its result, the run folder it was given)."""
    servers = queue.SimpleQueue()
    for _ in range(FORK_SERVERS):
        servers.put(LocustForks(clean_env()))

    def start(case: int, args: list[str]) -> tuple[subprocess.CompletedProcess[str], Path]:
        folder = tmp_path_factory.mktemp(f"bad{case}")
        command = [*LOCUST[3:], "--host", demobot_url, *[a.format(bad=bad_files) for a in args]]
        if "--report-dir" not in args:
            command += ["--report-dir", str(folder / "run")]
        server = servers.get()
        try:
            return server.run(command, folder / "output.txt"), folder / "run"
        finally:
            servers.put(server)

    try:
        with ThreadPoolExecutor(FORK_SERVERS) as pool:
            futures = {
                expected: pool.submit(start, case, args) for case, (args, expected) in enumerate(BAD_LOCUST_INPUTS)
            }
            return {expected: future.result() for expected, future in futures.items()}
    finally:
        for _ in range(FORK_SERVERS):
            servers.get().close()


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


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"think-time = 1\n# caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 20)"), (bytes(range(256)), "binary")],
    ids=["latin-1", "binary"],
)
def test_bad_config_file_given_to_run_tests(content: bytes, expected: str, tmp_path: Path) -> None:
    """Locust reads config files before it imports locustfile.py, and a non-UTF-8 one ends in its traceback there
    (no plugin can act yet); run_tests.py checks them before it starts Locust (or the demo chatbot)."""
    (tmp_path / "mine.conf").write_bytes(content)
    command = [sys.executable, "scripts/run_tests.py", "smoke", "--report-dir", str(tmp_path / "run")]
    result = subprocess.run(
        [*command, "--", "--config", str(tmp_path / "mine.conf")],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert one_error_line(result.stderr).startswith(f"run_tests: error: --config: {tmp_path / 'mine.conf'}")
    assert expected in result.stderr and "demo chatbot" not in result.stdout
    assert not (tmp_path / "run").exists()


def test_chatbot_url_is_the_default_host(demobot_url: str, tmp_path: Path) -> None:
    command = [*LOCUST, "--report-dir", str(tmp_path), "--user-mix", "HealthCheckUser"]
    result = subprocess.run(
        command, cwd=ROOT, env=clean_env(CHATBOT_URL=demobot_url), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert demobot_url in (tmp_path / "summary.json").read_text()
