"""--api presets in real headless runs against demobot speaking each API: timings, usage, TTFO and errors."""

from __future__ import annotations

import pytest

from tests.conftest import failure_counts
from users.common.request_headers import HeaderSettings

STREAM = ("--user-mix", "StreamingChatUser", "--spawn-rate", "50", "--think-time", "0.05")
TTFT_MS, TOKEN_MS, ANSWER, REASONING = 80, 20, 6, 2


@pytest.mark.parametrize(
    ("api", "reasoning"),
    [("anthropic", REASONING), ("openai-responses", REASONING), ("ollama", 0)],
)
def test_each_preset_times_demobot_speaking_its_api(demobot, run_locust, api: str, reasoning: int) -> None:
    # Reasoning deltas come first: TTFO is demobot's first token, TTFT its first answer token after them.
    timings = ("--ttft-ms", str(TTFT_MS), "--token-ms", str(TOKEN_MS), "--answer-tokens", str(ANSWER))
    bot = demobot(*timings, "--reasoning-tokens", str(reasoning))
    run = run_locust("--host", bot.url, *STREAM, "--api", api, "-u", "2", "-t", "3s")
    assert run.returncode == 0, run.output
    llm = run.summary["llm"]
    assert llm["requests"] >= 4 and llm["failures"] == 0
    ttfo, ttft = llm["ttfo_ms"]["p50"], llm["ttft_ms"]["p50"]
    assert TTFT_MS - 1 < ttfo < TTFT_MS + 30, llm["ttfo_ms"]
    answer_first = TTFT_MS + reasoning * TOKEN_MS
    assert answer_first - 1 < ttft < answer_first + 30, llm["ttft_ms"]
    assert (ttfo < ttft - TOKEN_MS) if reasoning else ttfo == ttft
    assert TOKEN_MS - 5 < llm["itl_ms"]["p50"] < TOKEN_MS + 5, llm["itl_ms"]
    assert llm["itl_ms"]["count"] == (ANSWER - 1) * llm["requests"]  # answer gaps only, pings yield nothing
    assert llm["output_tokens_source"] == "usage"
    assert llm["output_tokens"] == (ANSWER + reasoning) * llm["requests"]  # the providers count reasoning too
    # Every token, reasoning included, follows the one before by TOKEN_MS: TPOT times them from the first output.
    assert TOKEN_MS - 3 < llm["tpot_ms"]["p50"] < TOKEN_MS + 3, llm["tpot_ms"]


def test_an_anthropic_error_event_fails_the_answer_by_name(demobot, run_locust) -> None:
    bot = demobot("--ttft-ms", "20", "--token-ms", "2", "--fault", "error-event")
    run = run_locust("--host", bot.url, *STREAM, "--api", "anthropic", "-u", "1", "-t", "3s")
    assert run.returncode == 1, run.output
    failures = failure_counts(run)
    assert "error in stream: overloaded_error: injected fault: the model crashed" in failures, failures


def test_a_preset_sets_the_key_header_unless_told_otherwise() -> None:
    assert HeaderSettings(api_key="k").sent((), "x-api-key") == {"x-api-key": "k"}
    assert HeaderSettings(api_key="k").sent(()) == {"Authorization": "Bearer k"}
    own = HeaderSettings(api_key="k", api_key_header="X-Key").sent((), "x-api-key")
    assert own == {"X-Key": "k"}


def test_every_streaming_preset_is_an_api_choice_and_back() -> None:
    from users.common.api_choice import STREAM_APIS
    from users.llm.api_presets import PRESETS

    assert tuple(PRESETS) == STREAM_APIS
