"""The math every figure rests on, against hand-computed values: exact histograms (percentiles, buckets,
merges of unequal parts) and the per-answer LLM metrics (ITL, TPOT, tokens/s) and their merge."""

from __future__ import annotations

import math
import random
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy
import pytest

from core import histogram as histogram_module
from core.histogram import Histogram, bucket
from users.llm.stream_metrics import StreamRecord, StreamStats


def test_percentiles_are_nearest_rank_over_every_value() -> None:
    histogram = Histogram()
    histogram.add_all(float(ms) for ms in range(1, 101))  # 1 … 100 ms, once each
    assert [histogram.percentile(p) for p in (1, 50, 90, 95, 99, 100)] == [1, 50, 90, 95, 99, 100]
    assert histogram.mean() == pytest.approx(50.5)
    assert histogram.summary() == {"count": 100, "mean": 50.5, "p50": 50, "p90": 90, "p95": 95, "p99": 99}
    assert Histogram().percentile(50) is None and Histogram().mean() is None


def test_values_keep_three_significant_digits() -> None:
    # Keys are microseconds: below 1 ms every microsecond counts, above it three digits stay.
    assert [bucket(0.4567), bucket(1.2345), bucket(12.345), bucket(12345.6)] == [457, 1230, 12300, 12300000]
    histogram = Histogram()
    histogram.add(108.4)
    assert histogram.percentile(95) == 108  # 0.1% resolution, not Locust's 10 ms steps (110)


def test_merging_unequal_parts_adds_counts_and_never_averages() -> None:
    """90 fast answers on one worker, 10 slow ones on another: the merged p95 is slow, the median fast.

    Averaging the workers' percentiles would give p95 = (10 + 1000) / 2 = 505 and p50 = 505, and averaging
    their means 505 too; the merge must give 1000, 10 and 109.
    """
    fast, slow = Histogram(), Histogram()
    fast.add_all([10.0] * 90)
    slow.add_all([1000.0] * 10)
    merged = Histogram()
    merged.merge(fast.counts)  # as a dict
    merged.merge(list(slow.counts.items()))  # as the pairs a worker sends
    assert merged.total == 100
    assert (merged.percentile(50), merged.percentile(90), merged.percentile(95)) == (10, 10, 1000)
    assert merged.mean() == pytest.approx((90 * 10 + 10 * 1000) / 100)


def answer(ttft: float, gaps: list[float], usage: int | None = None) -> StreamRecord:
    """A streamed answer: first content at ``ttft`` ms, then one chunk after each gap, ending at the last."""
    times = [ttft]
    for gap in gaps:
        times.append(times[-1] + gap)
    return StreamRecord("chat:x", 0.0, ttft_ms=ttft, e2e_ms=times[-1], chunk_times_ms=times, usage_tokens=usage)


def test_itl_tpot_and_tokens_per_s_follow_their_definitions() -> None:
    record = answer(100.0, [10.0, 20.0, 30.0])  # chunks at 100, 110, 130, 160 ms
    assert record.itl_ms == [10.0, 20.0, 30.0]
    assert record.tpot_ms == pytest.approx((160 - 100) / (4 - 1))  # (E2E - TTFT) / (tokens - 1) = 20
    assert record.tokens_per_s == pytest.approx(4 / 0.160)
    usage = answer(100.0, [10.0, 20.0, 30.0], usage=7)  # the server's count wins over the chunks
    assert usage.output_tokens == 7 and usage.tpot_ms == pytest.approx(60 / 6)
    assert answer(100.0, []).tpot_ms is None  # one token: no time per output token


def test_stream_stats_merge_unequal_workers_exactly() -> None:
    """One worker's 3 quick answers and another's single slow one give the distributions of all four."""
    one, two = StreamStats(), StreamStats()
    for _ in range(3):
        one.add(answer(50.0, [5.0] * 9))
    two.add(answer(400.0, [40.0] * 9))
    two.add(StreamRecord("chat:x", 0.0, error="timeout"))
    merged = StreamStats()
    merged.merge_message(one.to_message())
    merged.merge_message(two.to_message())
    assert (merged.requests, merged.failures, merged.output_tokens) == (5, 1, 40)
    ttft = merged.histograms["ttft_ms"]
    assert (ttft.total, ttft.percentile(50), ttft.percentile(99)) == (4, 50, 400)
    itl = merged.histograms["itl_ms"]  # pooled over all gaps: 27 of 5 ms, 9 of 40 ms
    assert (itl.total, itl.percentile(75), itl.percentile(76)) == (36, 5, 40)
    assert merged.histograms["tpot_ms"].mean() == pytest.approx((3 * 5 + 40) / 4)


EDGE_VALUES = [0.0, -0.0, -3.2, -1e20, 0.9995, 9.9995, 99.9995, 999.9995, 999999.5, 1e300, 3, 10**400, True]
"""Values at the edges of the key scales, below zero, far (a float of 1,000 s and more; an int past any float)."""
OTHER_NUMBERS = [numpy.float32(0.0005), numpy.float64(0.0015), Decimal("1.0049999999999999999"), Fraction(1, 2000)]
"""Numbers of other types, whose own arithmetic ``bucket`` uses (float32: 0.0005 * 1000 is 0.5, so key 0)."""


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_add_and_add_all_key_every_value_as_bucket_does(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways of adding (core/_speedups.c ``count_values``, and the Python code with ``bucket`` inlined) give
    ``bucket``'s keys: every magnitude, halves of a microsecond (rounded to even, as round() does) and the edges."""
    if not compiled:
        monkeypatch.setattr(histogram_module, "count_values", None)
    elif histogram_module.count_values is None:
        pytest.skip("core/_speedups.c is not built here")
    spread = random.Random(7)
    values = [10 ** (exponent / 50) for exponent in range(-250, 451)] + [k / 2000 for k in range(4001)]
    values += [spread.uniform(0, 10 ** spread.randint(0, 7)) for _ in range(5000)] + EDGE_VALUES + OTHER_NUMBERS
    expected = Counter(bucket(value) for value in values)
    one_by_one, all_at_once = Histogram(), Histogram()
    for value in values:
        one_by_one.add(value)
    all_at_once.add_all(iter(values))
    assert all_at_once.counts == one_by_one.counts == expected
    assert all_at_once.total == one_by_one.total == len(values)
    halves = Histogram()  # by hand: 0.5 and 1.5 µs to 0 and 2; 1005 and 1015 µs to 100.5 and 101.5 tens, so 1000, 1020
    halves.add_all([0.0005, 0.0015, 1.005, 1.015])
    assert halves.counts == {0: 1, 2: 1, 1000: 1, 1020: 1}
    halves.add(numpy.float32(0.0005))  # 0.5 in float32 arithmetic (a double would make it 0.50000002, so 1)
    assert halves.counts[0] == 2


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
@pytest.mark.parametrize("value", [math.nan, math.inf, "12"])
def test_a_value_bucket_refuses_is_refused_alike(compiled: bool, value: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if not compiled:
        monkeypatch.setattr(histogram_module, "count_values", None)
    with pytest.raises(Exception) as refused:
        bucket(value)
    for add in (Histogram().add, lambda value: Histogram().add_all([1.0, value])):
        with pytest.raises(type(refused.value)):
            add(value)
