"""AudioStreamUser in real headless Locust runs against demobot's /ws/audio, with every preset.

demobot answers a known time after the caller's speech ends (--audio-reply-ms), sends its reply a
known lead ahead of real time (--audio-lead-ms) and counts what it sees, so these tests check the
client's TTFA, mark round trips, real-time factor, lateness reporting and fault counting against it.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import websocket

from demobot.launcher import DemobotProcess
from tests.conftest import ROOT, LocustRun, clean_env, free_port, locust_run

pytestmark = pytest.mark.alone  # real-time callers: their timing tests take the whole machine, not a lane

REPLY_MS, ENDPOINT_MS, REPLY_LEN_MS, LEAD_MS = 250, 150, 300, 100
BOT = (
    "--audio-reply-ms", str(REPLY_MS), "--audio-endpoint-ms", str(ENDPOINT_MS),
    "--audio-reply-len-ms", str(REPLY_LEN_MS), "--audio-lead-ms", str(LEAD_MS),
)  # fmt: skip
TTFA_TOLERANCE_MS = 30
"""The measured TTFA may exceed demobot's configured delay by at most this (network, timers, scheduling)."""
VOICE_DIR = ROOT / "datasets" / "voice"
"""The shipped spoken questions (create_test_data.py --voice): the raw preset's callers say them, one per turn."""


def caller(wav: str, *extra: str) -> tuple[str, ...]:
    said = ("--audio-file", wav) if wav else ()
    return ("--user-mix", "AudioStreamUser", *said, "--think-time", "0.05", "-r", "20", *extra)


def audio_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/stats/audio", timeout=5) as response:
        return json.loads(response.read())


def rows(run: LocustRun, kind: str) -> dict[str, dict]:
    return {name: row for name, row in run.summary["requests"].items() if name.startswith(f"{kind} ")}


PRESETS = {
    "raw": [
        "--audio-protocol", "raw", "--audio-dir", str(VOICE_DIR), "--dead-air-ms", "200", "--slo", "call_setup>=100%",
    ],
    "twilio": ["--audio-protocol", "twilio"],
    "openai-realtime": ["--audio-protocol", "openai-realtime"],
    "openai-realtime-beta-server-vad": [
        "--audio-protocol", "openai-realtime", "--realtime-api", "beta", "--end-of-speech", "silence",
    ],
    "raw-stop-sending": ["--audio-protocol", "raw", "--end-of-speech", "stop"],
}  # fmt: skip


@pytest.fixture(scope="module")
def preset_runs(short_wav: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[LocustRun, dict]]:
    """A run of three callers with each preset, each against a demo chatbot of its own: preset → (the run, what its
    demo chatbot saw). The runs take a CPU core each, one run per core at a time (three real-time callers and three
    demo chatbots on one core starve each other on a slow machine, and TTFA measures the starved bot)."""
    free_cores: queue.SimpleQueue[int] = queue.SimpleQueue()
    for core in os.sched_getaffinity(0):
        free_cores.put(core)

    def run(preset: str) -> tuple[LocustRun, dict]:
        core = free_cores.get()
        os.sched_setaffinity(threading.get_native_id(), {core})  # this thread's: the processes it starts inherit it
        try:
            with DemobotProcess(*BOT) as bot:
                said = "" if "--audio-dir" in PRESETS[preset] else short_wav  # a folder of utterances, or one file
                args = caller(said, "-u", "3", "-t", "8s", "--turns", "2", "--response-gap-ms", "300", "--skip-probe")
                done = locust_run(tmp_path_factory.mktemp(preset), "--host", bot.url, *args, *PRESETS[preset])
                return done, audio_stats(bot.url)
        finally:
            free_cores.put(core)

    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as runs:
        return dict(zip(PRESETS, runs.map(run, PRESETS), strict=True))


@pytest.mark.timing
@pytest.mark.parametrize("preset", list(PRESETS))
def test_ttfa_matches_the_bots_reply_delay(preset_runs: dict[str, tuple[LocustRun, dict]], preset: str) -> None:
    run, served = preset_runs[preset]
    assert run.returncode == 0, run.output
    audio = run.summary["audio"]
    protocol = PRESETS[preset][1]
    name = f"audio:{protocol}"

    ttfa = audio["ttfa_ms"]
    assert ttfa["count"] >= 6, audio
    assert REPLY_MS - 1 <= ttfa["p50"] <= REPLY_MS + TTFA_TOLERANCE_MS, ttfa
    # A reply the bot itself sent late (its own log: this machine's scheduler held it) arrives that much later.
    assert ttfa["p95"] <= REPLY_MS + TTFA_TOLERANCE_MS + max(served["reply_late_ms"]), (ttfa, served["reply_late_ms"])
    # The rows of Locust's own stats say the same: CONNECT, TTFA per turn, CALL per finished call.
    assert run.row(f"TTFA {name}")["count"] == ttfa["count"]
    assert run.row(f"CALL {name}")["count"] == audio["calls"]["completed"] >= 3
    assert run.row(f"CONNECT {name}")["count"] == audio["connect_ms"]["count"] + 0 >= 3
    assert run.summary["totals"]["failures"] == 0 and audio["calls"]["failed"] == 0

    # The bot's audio: 300 ms per reply, the first 100 ms at once and the rest at real-time pace.
    assert audio["response_audio_ms"]["p50"] == REPLY_LEN_MS
    expected_rtf = (REPLY_LEN_MS - LEAD_MS) / REPLY_LEN_MS
    assert abs(audio["response_rtf"]["p50"] - expected_rtf) < 0.05, audio["response_rtf"]
    assert audio["underruns"] == 0

    # Every frame's lateness is reported; three callers keep real time (this test runs alone: a timing test),
    # so the generator is not behind (its loud warning is tested where it must fire).
    lateness = audio["send_lateness_ms"]
    assert lateness["count"] == audio["frames_sent"] > 100 and lateness["p50"] < 5, lateness
    assert lateness["p99"] <= 20 and audio["generator_behind_real_time"] is False, lateness
    assert "AUDIO GENERATOR BEHIND REAL TIME" not in run.output
    assert audio["bytes_sent"] > audio["frames_sent"] and audio["frames_received"] > 0

    assert served["protocols"] == {protocol: run.row(f"CONNECT {name}")["count"]}
    if protocol == "twilio":
        # A mark is echoed when the audio before it has played: the lead plus the last 20 ms frame.
        marks = audio["mark_ms"]
        assert marks["count"] >= 6 and abs(marks["p50"] - (LEAD_MS + 20)) < 10, marks
        assert 0 <= served["marks_sent"] - served["marks_echoed"] <= 3  # a few may be due as the run stops
        assert served["marks_echoed"] >= marks["count"]
        assert abs(served["mark_rtt_mean_ms"] - marks["mean"]) < 5, (served, marks)
    else:
        assert audio["mark_ms"]["count"] == 0
    if "--audio-dir" in PRESETS[preset]:
        check_spoken_questions(audio, served, run.summary)


def check_spoken_questions(audio: dict, served: dict, summary: dict) -> None:
    """Callers said different questions turn by turn, each answered after demobot's delay, and every wait for an
    answer (demobot's 250 ms) was dead air by the run's --dead-air-ms 200."""
    said = [json.loads(line) for line in (VOICE_DIR / "utterances.jsonl").read_text().splitlines()]
    # demobot heard each turn's speech from its first to its last voice frame: an utterance's length, less a frame.
    heard = served["speech_ms"]
    assert len(heard) >= audio["turns"] - 3, served  # the last turns may be cut short mid-speech
    for length in heard:
        assert min(abs(length - (u["speech_ms"] - 20)) for u in said) <= 40, (length, said)
    assert len({round(length, -2) for length in heard}) >= 3, heard  # different questions, not one
    by_turn = audio["ttfa_by_turn_ms"]
    assert set(by_turn) == {"1", "2"} and by_turn["2"]["count"] >= 3, by_turn
    for turn in by_turn.values():  # every utterance's answer, on every turn, after the bot's delay
        assert turn["p50"] >= REPLY_MS - 1 and turn["p99"] <= REPLY_MS + TTFA_TOLERANCE_MS, by_turn
    dead_air = audio["dead_air"]
    assert dead_air["threshold_ms"] == 200
    # Each answered turn was one silence of 250 ms; a turn cut short while waiting may add one (3 callers).
    assert audio["responses"] <= dead_air["silences_over_threshold"] <= audio["responses"] + 3, dead_air
    assert REPLY_MS - 1 <= dead_air["longest_silence_ms"]["p50"] <= REPLY_MS + TTFA_TOLERANCE_MS, dead_air
    setup = audio["setup"]
    assert setup["success_rate"] == 1.0 and setup["set_up"] == setup["tried"] >= 3, setup
    assert audio["calls"]["abandoned"] == 0
    assert summary["slo"] == [{"slo": "call_setup>=100%", "value": 1.0, "passed": True}], summary["slo"]


def test_injected_faults_are_counted_apart_from_real_failures(demobot, run_locust, short_wav) -> None:
    bot = demobot(*BOT, "--audio-idle-timeout", "0.5")
    faults = ("--fault-rate", "0.5", "--seed", "8", "--fault-silence", "3")
    run = run_locust("--host", bot.url, *caller(short_wav, "-u", "4", "-t", "10s", *faults))
    # Misbehaving on purpose is not a failure: the run passes.
    assert run.returncode == 0, run.output
    assert run.summary["totals"]["failures"] == 0
    audio = run.summary["audio"]
    injected = audio["faults"]["injected"]
    assert set(injected) == {"drop", "malformed", "silence"}, audio["faults"]
    fault_rows = rows(run, "FAULT")
    assert {name: row["count"] for name, row in fault_rows.items()} == {
        f"FAULT audio:raw {kind}": count for kind, count in injected.items()
    }
    assert audio["faults"]["reactions"] == {
        "drop: dropped mid-utterance": injected["drop"],
        "malformed: hung up (closed 1007)": injected["malformed"],
        "silence: hung up (closed 1000)": injected["silence"],
    }
    # The bot hung up on a silent caller after its idle timeout: 0.5 s once its own reply was over.
    silence_row = run.row("FAULT audio:raw silence")
    assert 500 <= silence_row["p50_ms"] <= 500 + REPLY_MS + REPLY_LEN_MS + 300, silence_row
    # Every call right after a fault was a fresh connection that worked.
    assert audio["faults"]["recovered"] >= 4 and audio["faults"]["not_recovered"] == 0
    assert audio["real_failures"] == {} and audio["calls"]["completed"] >= 4
    served = audio_stats(bot.url)
    assert served["malformed"] == injected["malformed"]
    assert injected["drop"] <= served["dropped"] <= injected["drop"] + 1
    assert served["idle_hangups"] >= injected["silence"]

    # A bot that refuses calls fails them for real; injected faults still stay apart.
    small = demobot(*BOT, "--audio-calls", "1", "--audio-idle-timeout", "0.5")
    refused = run_locust("--host", small.url, *caller(short_wav, "-u", "3", "-t", "6s", *faults))
    assert refused.returncode == 1
    audio = refused.summary["audio"]
    connects = refused.row("CONNECT audio:raw")
    assert connects["failures"] > 0
    assert audio["real_failures"] == {"handshake HTTP 503 Service Unavailable": connects["failures"]}
    assert audio["calls"]["connect_failures"] == audio["calls"]["failed"] == connects["failures"]
    assert [f["request"] for f in refused.summary["failures"]] == ["CONNECT audio:raw"]
    assert all(row["failures"] == 0 for row in rows(refused, "FAULT").values())
    assert audio_stats(small.url)["rejected"] >= connects["failures"]


def test_a_generator_that_falls_behind_real_time_says_so_loudly(demobot, run_locust, short_wav) -> None:
    # 100 calls of 1 ms frames are 100,000 frames a second: about twice what one Locust process can pace.
    bot = demobot(*BOT, "--audio-calls", "200")
    run = run_locust("--host", bot.url, *caller(short_wav, "-u", "100", "-r", "100", "-t", "5s", "--chunk-ms", "1"))
    audio = run.summary["audio"]
    assert audio["generator_behind_real_time"] is True
    assert audio["send_lateness_ms"]["p99"] > 20 and audio["late_frames"] > 0
    assert "AUDIO GENERATOR BEHIND REAL TIME" in run.output
    assert "NOT trustworthy" in run.output
    generator = run.summary["generator"]
    assert generator["trustworthy"] is False
    assert any(reason.startswith("audio frames left late") for reason in generator["reasons"])


@pytest.mark.timing
def test_audio_metrics_merge_across_worker_processes(demobot, run_locust, short_wav) -> None:
    bot = demobot(*BOT)
    port = str(free_port())
    args = caller(short_wav, "-u", "4", "-t", "7s", "--audio-protocol", "twilio", "--response-gap-ms", "300")
    run = run_locust("--host", bot.url, *args, "--processes", "2", "--master-bind-port", port, "--master-port", port)
    assert run.returncode == 0, run.output
    audio = run.summary["audio"]
    assert audio["calls"]["completed"] == run.row("CALL audio:twilio")["count"] >= 4
    assert audio["ttfa_ms"]["count"] == run.row("TTFA audio:twilio")["count"]
    assert audio["connect_ms"]["count"] == run.row("CONNECT audio:twilio")["count"]
    assert REPLY_MS - 1 <= audio["ttfa_ms"]["p50"] <= REPLY_MS + TTFA_TOLERANCE_MS
    assert audio["mark_ms"]["count"] >= audio["calls"]["completed"]
    with (run.report_dir / "requests.csv").open() as file:
        kinds = {row["type"] for row in csv.DictReader(file)}
    assert {"CONNECT", "TTFA", "CALL"} <= kinds


@pytest.mark.parametrize(
    "shape",
    [
        ["--shape", "wave", "--min-users", "1", "--max-users", "3", "--waves", "1", "--wave-time", "6",
         "--wave-form", "square"],
        ["--shape", "burst", "--min-users", "1", "--burst-users", "3", "--burst-ramp-ms", "300", "--burst-hold", "3",
         "--burst-rest", "2", "--bursts", "1"],
        ["--shape", "stability", "--min-users", "1", "--max-users", "3", "--peak-every", "4", "--peak-time", "2",
         "-t", "6s"],
    ],
    ids=["wave", "burst", "stability"],
)  # fmt: skip
def test_load_shapes_drive_audio_callers(demobot, run_locust, short_wav, shape) -> None:
    bot = demobot(*BOT)
    run = run_locust("--host", bot.url, *caller(short_wav, "--response-gap-ms", "300", *shape), timeout=60)
    assert run.returncode == 0, run.output
    assert run.summary["shape"]["name"] == shape[1]
    assert run.summary["duration_s"] < 9
    audio = run.summary["audio"]
    assert audio["calls"]["completed"] >= 2 and audio["ttfa_ms"]["count"] >= 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--audio-file", "/no/such.wav"], "--audio-file: no such file"),
        (["--fault-rate", "2"], "--fault-rate: must be from 0 to 1"),
        (["--fault-kinds", "drop,explode"], "--fault-kinds: unknown explode"),
        (["--end-of-speech", "commit"], "--end-of-speech commit: only openai-realtime can commit"),
        (["--chunk-ms", "0"], "--chunk-ms: must be greater than zero"),
        (["--turns", "0"], "--turns: must be 1 or more"),
    ],
    ids=["missing-file", "fault-rate", "fault-kinds", "commit", "chunk", "turns"],
)
def test_bad_audio_options_stop_the_run_with_one_line(demobot, args, expected) -> None:
    bot = demobot()
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "-u", "1", "-t", "2s"]
    command += ["--host", bot.url, "--user-mix", "AudioStreamUser", *args]
    result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and expected in errors[0], errors
    assert "Traceback" not in result.stderr


def test_voice_test_types_run_with_their_own_demobot(tmp_path: Path, short_wav: str) -> None:
    for name in ("throughput", "resilience", "high_concurrency"):
        conf = (ROOT / "config" / f"{name}.conf").read_text()
        assert "user-mix = AudioStreamUser" in conf and f"test-type = {name}" in conf
    report_dir = tmp_path / "throughput"
    command = [sys.executable, str(ROOT / "scripts" / "run_tests.py"), "throughput", "--duration", "6s", "--users", "2"]
    command += ["--report-dir", str(report_dir), "--", "--audio-file", short_wav, "--turns", "1"]
    result = subprocess.run(command, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((report_dir / "summary.json").read_text())
    assert summary["test_type"] == "throughput" and summary["audio"]["calls"]["completed"] >= 2
    assert "TTFA audio:raw" in result.stdout


def test_demobot_refuses_calls_beyond_capacity_and_greets_realtime_callers(demobot) -> None:
    bot = demobot("--audio-calls", "1")
    url = bot.url.replace("http://", "ws://")
    first = websocket.create_connection(f"{url}/v1/realtime", timeout=5)
    try:
        created = json.loads(first.recv())
        assert created["type"] == "session.created"
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"{url}/ws/audio", timeout=5)
        assert refused.value.status_code == 503
        first.send(json.dumps({"type": "no.such.event"}))
        error = json.loads(first.recv())
        assert error["type"] == "error" and "unknown event type" in error["error"]["message"]
    finally:
        first.close()
    stats = audio_stats(bot.url)
    assert stats["rejected"] == 1 and stats["accepted"] == 1 and stats["protocols"] == {"openai-realtime": 1}
