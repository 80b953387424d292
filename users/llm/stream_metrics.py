"""LLM streaming metrics: one plain record per streamed answer, and mergeable distributions of them.

Definitions follow vLLM ``bench serve``, GuideLLM and AIPerf (see DESIGN.md), so numbers compare
one-to-one:

- TTFT: request start (just before the request is written) → first chunk with non-empty answer content.
- TTFO: request start → first output of any kind, reasoning included (AIPerf's TTFO); equals TTFT for a
  stream without reasoning, and is never later than TTFT.
- E2E: request start → end of the response body.
- ITL: every gap between consecutive content chunks of a response; distributions pool all gaps.
- TPOT: per request, (E2E - TTFT) / (output tokens - 1).
- Output tokens: the server's ``usage.completion_tokens`` when sent, else the number of content chunks.
- Per-request tokens/s: output tokens / E2E.

Distributions are core.histogram's: three significant digits (0.1% resolution), so workers can send
them to the master and percentiles are computed from the merged counts, never averaged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from core.histogram import PERCENTILES, Histogram

__all__ = ["LATENCY_METRICS", "PERCENTILES", "StreamRecord", "StreamStats"]


@dataclass(slots=True)
class StreamRecord:
    """The timings of one streamed answer; times are milliseconds from the request start."""

    name: str
    started_at: float
    """Wall-clock time (epoch seconds) the request was sent."""
    ttft_ms: float | None = None
    ttfo_ms: float | None = None
    """Time to the first output of any kind (a reasoning delta or answer text)."""
    e2e_ms: float | None = None
    chunk_times_ms: list[float] = field(default_factory=list)
    """Arrival time of every answer content chunk (reasoning deltas count for TTFO only)."""
    usage_tokens: int | None = None
    error: str | None = None
    user: int = 0
    request_id: str = ""
    """The server's id for the request (its X-Request-Id header), to match server-side logs."""

    @property
    def output_tokens(self) -> int:
        """Tokens generated: the server's usage count when it sent one, else the content chunks."""
        return self.usage_tokens if self.usage_tokens is not None else len(self.chunk_times_ms)

    @property
    def tokens_from_usage(self) -> bool:
        return self.usage_tokens is not None

    @property
    def itl_ms(self) -> list[float]:
        """Gaps between consecutive content chunks."""
        times = self.chunk_times_ms
        return [later - earlier for earlier, later in pairwise(times)]

    @property
    def tpot_ms(self) -> float | None:
        """(E2E - TTFT) / (output tokens - 1). A server's usage counts reasoning tokens too, so then the tokens
        are timed from the first output of any kind (TTFO), or reasoning would make each token look faster."""
        first = self.ttfo_ms if self.tokens_from_usage and self.ttfo_ms is not None else self.ttft_ms
        if first is None or self.ttft_ms is None or self.e2e_ms is None or self.output_tokens < 2:
            return None
        return (self.e2e_ms - first) / (self.output_tokens - 1)

    @property
    def tokens_per_s(self) -> float | None:
        if not self.e2e_ms or not self.output_tokens:
            return None
        return self.output_tokens / (self.e2e_ms / 1000)

    @property
    def mean_itl_ms(self) -> float | None:
        gaps = self.itl_ms
        return sum(gaps) / len(gaps) if gaps else None


LATENCY_METRICS = ("ttft_ms", "ttfo_ms", "itl_ms", "tpot_ms", "e2e_ms", "tokens_per_s")
"""The distributions kept for streamed answers (tokens_per_s is per request)."""


class StreamStats:
    """Everything measured about streamed answers in one process (or merged from several)."""

    def __init__(self) -> None:
        self.histograms: dict[str, Histogram] = {name: Histogram() for name in LATENCY_METRICS}
        self.requests = 0
        self.failures = 0
        self.output_tokens = 0
        self.usage_counted = 0
        """Successful requests whose token count came from the server's usage."""
        self.good = 0
        """Successful requests that met every per-request SLO (goodput)."""

    def add(self, record: StreamRecord, good: bool = True) -> None:
        """Count one finished request; failures count but add no latencies."""
        self.requests += 1
        if record.error:
            self.failures += 1
            return
        h = self.histograms
        if record.ttft_ms is not None:
            h["ttft_ms"].add(record.ttft_ms)
        ttfo = record.ttfo_ms if record.ttfo_ms is not None else record.ttft_ms
        if ttfo is not None:
            h["ttfo_ms"].add(ttfo)
        if record.e2e_ms is not None:
            h["e2e_ms"].add(record.e2e_ms)
        h["itl_ms"].add_all(record.itl_ms)
        for name, value in (("tpot_ms", record.tpot_ms), ("tokens_per_s", record.tokens_per_s)):
            if value is not None:
                h[name].add(value)
        self.output_tokens += record.output_tokens
        self.usage_counted += record.tokens_from_usage
        self.good += good

    def to_message(self) -> dict[str, Any]:
        """A compact, msgpack-friendly form for sending to the master."""
        return {
            "histograms": {name: list(h.counts.items()) for name, h in self.histograms.items()},
            "counts": [self.requests, self.failures, self.output_tokens, self.usage_counted, self.good],
        }

    def merge_message(self, message: dict[str, Any]) -> None:
        """Add a worker's figures sent with to_message."""
        for name, pairs in message["histograms"].items():
            self.histograms[name].merge(pairs)
        requests, failures, tokens, usage_counted, good = message["counts"]
        self.requests += requests
        self.failures += failures
        self.output_tokens += tokens
        self.usage_counted += usage_counted
        self.good += good

    def summary(self, duration_s: float) -> dict[str, Any]:
        """The ``llm`` section of summary.json."""
        successes = self.requests - self.failures
        source = "usage" if successes and self.usage_counted == successes else "chunks"
        if 0 < self.usage_counted < successes:
            source = "mixed"
        section: dict[str, Any] = {name: h.summary() for name, h in self.histograms.items()}
        section.update(
            requests=self.requests,
            failures=self.failures,
            output_tokens=self.output_tokens,
            output_tokens_source=source,
            output_tokens_per_s=round(self.output_tokens / duration_s, 2) if duration_s > 0 else None,
            goodput_rps=round(self.good / duration_s, 3) if duration_s > 0 else None,
        )
        return section
