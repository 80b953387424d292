"""SLOs judged in breakpoint steps and PID windows (TPOT, ITL), and the plenary, audio and arrival metrics at the
gate, in real runs against demobot (known token gap, known share of dropped broadcasts)."""

from __future__ import annotations

import pytest

from tests.plugins.slo_runs import PLENARY, STREAM, slo_args, slo_values


def test_breakpoint_and_pid_judge_tpot_and_itl_in_their_windows(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "20", "--token-ms", "10", "--answer-tokens", "6", "--slots", "64")
    steps = ("--shape", "breakpoint", "--start-users", "1", "--step-users", "1", "--max-users", "2")
    steps += ("--step-time", "4", "--settle-time", "1")
    held = run_locust("--host", bot.url, *STREAM, *steps, *slo_args("tpot_p95<40", "itl_p95<40"), timeout=60)
    assert held.returncode == 0, held.output
    shape = held.summary["shape"]
    assert shape["max_sustainable_users"] == 2 and shape["reason"].startswith("reached max users")
    for step in shape["steps"]:  # each step judged ITL and TPOT on its own window: about --token-ms
        assert 8 <= step["slos"]["tpot_p95<40"] < 40 and 8 <= step["slos"]["itl_p95<40"] < 40, step

    # A batching bot: each answer generated beside others gets 8 ms more per token for each of them, so TPOT p95 is
    # about 10 ms at 1 user, 18 at 2 and 26 at 3. A threshold of 22 holds two steps and breaks at the third, on TPOT.
    batching = demobot("--ttft-ms", "20", "--token-ms", "10", "--token-ms-per-stream", "8", "--answer-tokens", "6")
    three = ("--shape", "breakpoint", "--start-users", "1", "--step-users", "1", "--max-users", "3")
    three += ("--step-time", "4", "--settle-time", "1")
    broken = run_locust("--host", batching.url, *STREAM, *three, *slo_args("tpot_p95<22", "p95<60s"), timeout=60)
    assert broken.returncode == 0, broken.output  # a breakpoint that found its knee is the test's answer, not a failure
    shape = broken.summary["shape"]
    assert shape["max_sustainable_users"] == 2 and len(shape["steps"]) == 3, shape
    assert [step["breached"] for step in shape["steps"]] == [[], [], ["tpot_p95<22"]], shape["steps"]
    assert [round(step["slos"]["tpot_p95<22"] / 8) for step in shape["steps"]] == [1, 2, 3], shape["steps"]
    assert shape["reason"].startswith("breach at 3 users: tpot_p95 ")
    answer = broken.summary["verdict"]["answer"]  # the console's last line states the users and the breaching SLO
    assert answer.startswith("sustains 2 users (") and "; breaks at 3 users: tpot_p95 " in answer, answer
    assert broken.output.rstrip().splitlines()[-1].endswith(f"ANSWER: {answer}")

    pid = ("--shape", "pid", "--latency-percentile", "tpot_p95", "--target-latency", "100", "--control-window", "3")
    regulated = run_locust("--host", bot.url, *STREAM, *pid, "--min-users", "1", "--max-users", "3", "-t", "8s")
    assert regulated.returncode == 0, regulated.output
    measured = [row["measured_ms"] for row in regulated.summary["shape"]["trace"][1:]]
    assert measured and all(8 <= ms < 40 for ms in measured), regulated.summary["shape"]["trace"]


def test_plenary_loss_fails_a_lost_slo(demobot, run_locust) -> None:
    bot = demobot("--broadcast-drop-rate", "0.05", "--seed", "3")
    run = run_locust(
        "--host", bot.url, *PLENARY, "-u", "10", "-t", "5s", "--chat-interval", "0.2-0.4", "--drain-time", "0.5",
        *slo_args("lost<1%", "completeness>90%", "duplicates<1%", "fanout_p95<5s"),
    )  # fmt: skip
    assert run.returncode == 3, run.output
    section = run.summary["plenary"]
    values = slo_values(run)
    assert section["expected"] > 300
    assert values["lost<1%"] == pytest.approx(section["lost"] / section["expected"])
    assert values["lost<1%"] == pytest.approx(0.05, abs=0.03)
    assert values["completeness>90%"] == pytest.approx(section["completeness"], abs=1e-6)
    assert [entry["passed"] for entry in run.summary["slo"]] == [False, True, True, True]


def test_audio_and_arrival_metrics_are_judged_at_the_gate(demobot, run_locust, short_wav) -> None:
    bot = demobot("--ttft-ms", "10", "--token-ms", "1", "--answer-tokens", "3")
    calls = ("--user-mix", "AudioStreamUser", "--audio-file", short_wav, "--think-time", "0.05", "-r", "20")
    run = run_locust(
        "--host", bot.url, *calls, "-u", "2", "-t", "5s",
        *slo_args("ttfa_p95<10s", "lateness_p99<1s", "lateness_p99[audio]<1s", "p95<60s"),
    )  # fmt: skip
    assert run.returncode == 0, run.output
    audio, values = run.summary["audio"], slo_values(run)
    assert values["ttfa_p95<10000"] == pytest.approx(audio["ttfa_ms"]["p95"], abs=0.005)
    assert values["lateness_p99[audio]<1000"] == pytest.approx(audio["send_lateness_ms"]["p99"], abs=0.005)
    assert values["lateness_p99<1000"] == values["lateness_p99[audio]<1000"]

    paced = ("--user-mix", "RestChatUser", "--shape", "arrival", "--arrival-rate", "10", "--max-users", "4")
    run = run_locust("--host", bot.url, *paced, "-t", "3s", *slo_args("lateness_p99[arrival]<1s", "rps>1"))
    assert run.returncode == 0, run.output
    assert all(entry["value"] is not None and entry["passed"] for entry in run.summary["slo"]), run.summary["slo"]
