"""Synthetic answers and their token timeline: what demobot "generates", and exactly when each token is due."""

from __future__ import annotations

import asyncio
import random
import time

ECHO_WORDS = 3
"""How many leading words of the question an answer repeats, so a checker can tell answers apart."""

_VOCABULARY_TEXT = (
    "the a an and or but so because while when where how why what which who this that these those it they we you "
    "system answer question model token stream latency throughput capacity request response server client user "
    "message session turn queue slot load test measure time first last next every each many few some all none "
    "quick slow steady calm busy idle ready clear honest simple small large fast late early warm cold bright dark "
    "river mountain forest ocean cloud garden window bridge lantern harbor meadow valley engine signal pattern "
    "number letter record report summary detail example result reason method choice option moment minute second "
    "can will should would could might must may does did has had is are was were be been being make take give "
    "find keep hold bring carry build write read send receive wait start stop check count share learn explain"
)
VOCABULARY = tuple(_VOCABULARY_TEXT.split())
"""The words answers are drawn from (one word = one token)."""


def question_words(text: str) -> int:
    """How many tokens (whitespace-separated words) a piece of text counts as."""
    return len(text.split())


def make_answer(question: str, n_tokens: int, seed: int, salt: str = "") -> list[str]:
    """The answer's tokens: up to `ECHO_WORDS` words echoed from the question, then seeded vocabulary words.

    The same (question, seed, salt) always gives the same answer, whatever the order requests arrive in.
    """
    if n_tokens <= 0:
        return []
    echo = question.split()[: min(ECHO_WORDS, n_tokens)]
    rng = random.Random(f"{seed}\x00{salt}\x00{question}")
    words = echo + rng.choices(VOCABULARY, k=n_tokens - len(echo))
    words[-1] += "."
    return words


def stream_pieces(tokens: list[str]) -> list[str]:
    """The text each streamed token carries: a leading space on all but the first, so pieces concatenate."""
    return [token if i == 0 else " " + token for i, token in enumerate(tokens)]


def wall_time_of(perf_instant: float) -> float:
    """Convert a `time.perf_counter()` instant to wall-clock `time.time()` seconds (for logs read elsewhere)."""
    return time.time() - (time.perf_counter() - perf_instant)


class TokenTimeline:
    """When each token of one answer is due: token 0 at `start + ttft`, token i at `start + ttft + i * token_gap`.

    Deadlines are absolute `perf_counter()` instants, so a late wake-up never shifts the tokens after it.
    """

    __slots__ = ("start", "token_gap_s", "ttft_s")

    def __init__(self, start: float, ttft_s: float, token_gap_s: float) -> None:
        self.start = start
        self.ttft_s = ttft_s
        self.token_gap_s = token_gap_s

    def due(self, index: int) -> float:
        """The `perf_counter()` instant at which token `index` (0-based) is due."""
        return self.start + self.ttft_s + index * self.token_gap_s

    async def wait_for(self, index: int) -> None:
        """Sleep until token `index` is due (returns at once if it already is)."""
        delay = self.due(index) - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
