"""Every SLO judged where it is accepted, from the same exact figures as summary.json, in real runs against demobot.

demobot's answers have a known TTFT (--ttft-ms) and a known gap between tokens (--token-ms, so ITL and TPOT are
about that); its faults fail a known share of answers; it drops a known share of plenary broadcasts.
"""

from __future__ import annotations

import pytest

from tests.plugins.slo_runs import STREAM, slo_args, slo_values

GATE_METRICS = [
    *(f"{stat}<60s" for stat in ("p50", "p90", "p95", "p99", "avg", "max")),
    *(
        f"{family}_{stat}<60s"
        for family in ("ttft", "itl", "tpot", "e2e")
        for stat in ("p50", "p90", "p95", "p99", "avg")
    ),
    "fail_ratio<50%",
    "rps>0.1",
    "tokens_per_s>1",
    "goodput>0.1",
]
"""Every SLO metric a streaming run can produce (the plenary and audio ones are judged in their own tests)."""


@pytest.mark.timing
def test_the_gate_judges_itl_and_ttft_on_the_llm_sections_exact_values(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "100", "--token-ms", "10", "--answer-tokens", "8")
    run = run_locust("--host", bot.url, *STREAM, "-u", "2", "-t", "4s", *slo_args("itl_p95<1", "ttft_p95<1s"))
    assert run.returncode == 3, run.output  # ITL is about 10 ms: the ITL SLO is judged, and breached
    summary = run.summary
    llm = summary["llm"]
    values = slo_values(run)
    assert summary["slo"][0]["passed"] is False and summary["slo"][1]["passed"] is True
    # One value per metric: the gate's is the llm section's (which rounds to 2 decimals), and near the truth.
    assert values["itl_p95<1"] == pytest.approx(llm["itl_ms"]["p95"], abs=0.005)
    assert values["ttft_p95<1000"] == pytest.approx(llm["ttft_ms"]["p95"], abs=0.005)
    assert 10 <= values["itl_p95<1"] < 20
    assert 100 <= values["ttft_p95<1000"] < 130
    assert "SLO FAIL itl_p95" in run.output


def test_every_slo_metric_of_a_stream_run_is_judged_at_the_gate(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "20", "--token-ms", "5", "--answer-tokens", "6")
    run = run_locust("--host", bot.url, *STREAM, "-u", "2", "-t", "3s", *slo_args(*GATE_METRICS))
    assert run.returncode == 0, run.output
    judged = run.summary["slo"]
    assert len(judged) == len(GATE_METRICS)
    assert [entry["slo"] for entry in judged if entry["value"] is None or not entry["passed"]] == []
    values = slo_values(run)
    assert values["tpot_p50<60000"] == pytest.approx(5, abs=3)
    requests = run.summary["requests"]
    e2e = next(row for key, row in requests.items() if key.startswith("E2E"))
    assert e2e["p95_ms"] is not None and values["fail_ratio<50%"] == 0.0


def test_an_unknown_name_has_no_data_which_breaches_unless_optional(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "10", "--token-ms", "1", "--answer-tokens", "3")
    missing = run_locust("--host", bot.url, *STREAM, "-u", "1", "-t", "2s", *slo_args("p95[chat:nosuch]<1s"))
    assert missing.returncode == 3, missing.output
    assert missing.summary["slo"] == [{"slo": "p95[chat:nosuch]<1000", "value": None, "passed": False}]
    assert "SLO FAIL NO DATA p95[chat:nosuch]<1000" in missing.output
    optional = run_locust("--host", bot.url, *STREAM, "-u", "1", "-t", "2s", *slo_args("p95[chat:nosuch]<1s?"))
    assert optional.returncode == 0, optional.output
    assert optional.summary["slo"] == [{"slo": "p95[chat:nosuch]<1000?", "value": None, "passed": None}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--user-mix", "RestChatUser", *slo_args("itl_p95<50")),
            "chatswarm: error: --slo 'itl_p95<50': cannot be measured in this run: itl_p95 needs StreamingChatUser "
            "or WebSocketChatUser among the users",
        ),
        (
            ("--user-mix", "StreamingChatUser", *slo_args("tokens_per_s[chat:nosuch]>1", "itl_p95[chat:simple]<1s")),
            "chatswarm: error: --slo 'tokens_per_s[chat:nosuch]>1': cannot be measured in this run: no request is "
            "named 'chat:nosuch' (StreamingChatUser's answers are chat:common, chat:complex, chat:simple)",
        ),
        (
            ("--user-mix", "RestChatUser", *slo_args("p95<2s", "lost<1%")),
            "--slo 'lost<1%': cannot be measured in this run: lost needs PlenaryUser among the users",
        ),
        (
            ("--user-mix", "StreamingChatUser", *slo_args("lateness_p99<20")),
            "--slo 'lateness_p99<20': cannot be measured in this run: no arrival or audio lateness in this run",
        ),
        (
            ("--user-mix", "RestChatUser", "--shape", "pid", "-t", "10s", "--latency-percentile", "tpot_p95"),
            "--latency-percentile tpot_p95: cannot be measured in this run: tpot_p95 needs StreamingChatUser",
        ),
        (
            ("--user-mix", "PlenaryUser", "--shape", "breakpoint", *slo_args("lost<1%")),
            "--slo 'lost<1%': cannot be measured in this run: lost is counted as members leave, for a whole run",
        ),
    ],
)
def test_slos_the_users_cannot_measure_are_refused_before_the_start(
    demobot, run_locust, args: tuple[str, ...], message: str
) -> None:
    bot = demobot()
    run = run_locust("--host", bot.url, "-u", "1", "-t", "2s", *args, timeout=30)
    assert run.returncode == 2, run.output
    assert message in run.output
    assert "Traceback" not in run.output
    assert not (run.report_dir / "summary.json").exists()


def test_a_known_share_of_failed_answers_is_the_failure_ratio(demobot, run_locust) -> None:
    bot = demobot(
        "--ttft-ms", "10", "--token-ms", "2", "--answer-tokens", "6", "--fault", "error-event:0.2", "--seed", "4"
    )
    run = run_locust("--host", bot.url, *STREAM, "-u", "4", "-t", "4s")
    assert run.returncode == 1, run.output
    summary = run.summary
    answers = [row for key, row in summary["requests"].items() if key.startswith("E2E")]
    timings = [row for key, row in summary["requests"].items() if key.startswith("TTFT")]
    count, failures = sum(r["count"] for r in answers), sum(r["failures"] for r in answers)
    assert sum(r["count"] for r in timings) > count / 2  # failed answers had a first token too: not counted twice
    totals = summary["totals"]
    assert (
        (totals["count"], totals["failures"])
        == (count, failures)
        == (summary["llm"]["requests"], summary["llm"]["failures"])
    )
    assert totals["fail_ratio"] == pytest.approx(failures / count, abs=1e-6)
    assert totals["fail_ratio"] == pytest.approx(0.2, abs=0.08)
    assert summary["verdict"]["success_rate"] == pytest.approx(1 - failures / count, abs=1e-4)
