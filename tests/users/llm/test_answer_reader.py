"""The reader of a streamed answer (users/llm/answer_reader.py), in a process patched as Locust's
(tests/stream_read_probe.py), against demobot: an answer read by the event loop, and a socket closed under it."""

from __future__ import annotations

from core import speedups
from tests.conftest import probe_figures


def test_a_socket_closed_while_the_loop_reads_it_ends_the_read_at_once(demobot) -> None:
    bot = demobot("--ttft-ms", "20", "--token-ms", "300", "--answer-tokens", "4")
    found = probe_figures("stream_read_probe.py", bot.url)
    whole = found["whole"]  # read to the server's done: four tokens, 300 ms apart, each timed on its own
    assert (whole["read"]["ending"], whole["usage"]) == ("server done", 4)
    gaps = [later - earlier for earlier, later in zip(whole["tokens"], whole["tokens"][1:], strict=False)]
    assert len(gaps) == 3 and all(250 < gap < 350 for gap in gaps), gaps  # merged tokens: 0 and 600 ms
    closed = found["closed"]  # the user raises at once, instead of waiting for a token that never comes
    # Both read in C (core/_speedups.c), as a Locust process reads them, where it is built.
    assert whole["compiled"] == closed["compiled"] == (speedups.ChunkedStream is not None)
    assert len(closed["tokens"]) == 1 and closed["read"].get("error") and closed["after_close_s"] < 0.1, closed


def test_a_first_token_is_read_at_a_poll_point_while_the_loop_is_busy(demobot) -> None:
    # Another greenlet holds the loop 450 ms: the first token (20 ms) and the second (320 ms) both come meanwhile.
    bot = demobot("--ttft-ms", "20", "--token-ms", "300", "--answer-tokens", "4")
    found = probe_figures("stream_read_probe.py", bot.url)
    unread, polled = found["busy"], found["busy, poll points"]
    for busy in (unread, polled):
        assert busy["read"]["ending"] == "server done" and busy["compiled"] == (speedups.ChunkedStream is not None)
    # Read after the loop's turn, the first token is merged with the second: one read, the second's stamp.
    assert unread["tokens"][0] > 300 and unread["tokens"][0] == unread["tokens"][1], unread
    # Read at a poll point (users/llm/first_tokens.py), it carries its own arrival, 300 ms before the second's.
    assert 20 <= polled["tokens"][0] < 250 and polled["tokens"][1] - polled["tokens"][0] > 200, polled
