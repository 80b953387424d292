"""The arrival schedule and its shortfall counts (users/common/arrival.py), by simulation."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from core.errors import InputError
from users.common.arrival import ArrivalSchedule, ShortfallCounter


def test_constant_arrivals_are_evenly_spaced() -> None:
    schedule = ArrivalSchedule(20.0, start=100.0)
    times = [schedule.next_due() for _ in range(2000)]
    assert times[0] == pytest.approx(100.025)
    assert all(b - a == pytest.approx(0.05) for a, b in itertools.pairwise(times))
    assert len(ArrivalSchedule(20.0, start=100.0).take_due(200.0)) == 2000


def test_poisson_arrivals_have_the_rate_and_exponential_gaps() -> None:
    times = ArrivalSchedule(50.0, kind="poisson", seed=7).take_due(200.0)
    assert len(times) == pytest.approx(10_000, rel=0.03)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.fmean(gaps) == pytest.approx(0.02, rel=0.03)
    assert statistics.pstdev(gaps) / statistics.fmean(gaps) == pytest.approx(1.0, abs=0.05)  # exponential: CV 1
    assert ArrivalSchedule(50.0, kind="poisson", seed=7).take_due(200.0) == times  # seeded: repeatable


@pytest.mark.parametrize("kind", ["constant", "poisson"])
def test_ramping_arrivals_follow_the_rate(kind: str) -> None:
    schedule = ArrivalSchedule(0.0, kind=kind, ramp_to=100.0, ramp_time_s=100.0, seed=3)
    times = schedule.take_due(150.0)
    assert schedule.rate_at(50.0) == 50.0 and schedule.expected_count(100.0) == 5000.0
    tolerance = 1 if kind == "constant" else 0.04 * 5000
    assert sum(t <= 100.0 for t in times) == pytest.approx(5000, abs=tolerance)
    assert sum(40.0 < t <= 50.0 for t in times) == pytest.approx(450, rel=0.01 if kind == "constant" else 0.15)
    assert sum(t > 100.0 for t in times) == pytest.approx(5000, rel=0.0002 if kind == "constant" else 0.04)
    down = ArrivalSchedule(10.0, ramp_to=0.0, ramp_time_s=10.0)
    assert len(list(down)) == 50 and down.peek() == math.inf  # the iterator ends when the rate reaches zero
    assert list(ArrivalSchedule(0.0)) == []
    with pytest.raises(InputError, match="arrival kind 'burst'"):
        ArrivalSchedule(1.0, kind="burst")


def serve(schedule: list[float], pool: int, service_s: float, counter: ShortfallCounter) -> list[float]:
    """Each scheduled start is taken by the first free user of ``pool``; returns latency from the schedule."""
    free_at = [0.0] * pool
    latencies = []
    for due in schedule:
        user = min(range(pool), key=free_at.__getitem__)
        started = max(due, free_at[user])
        counter.record(due, started)
        free_at[user] = started + service_s
        latencies.append(free_at[user] - due)
    return latencies


def test_shortfall_counts_starts_the_pool_could_not_serve_on_time() -> None:
    due = ArrivalSchedule(10.0).take_due(10.0)  # 100 starts, 0.1 s apart
    enough = ShortfallCounter()
    assert serve(due, pool=1, service_s=0.05, counter=enough) == pytest.approx([0.05] * 100)
    assert (enough.on_time, enough.late, enough.shortfall_ratio) == (100, 0, 0.0)
    short = ShortfallCounter()
    latencies = serve(due, pool=1, service_s=0.15, counter=short)  # each start slips 0.05 s more
    assert (short.scheduled, short.late, short.on_time) == (100, 99, 1)
    assert short.max_lateness_s == pytest.approx(99 * 0.05)
    assert short.lateness_percentile(0.5) == pytest.approx(2.5, abs=0.051)  # within one 50 ms step
    assert latencies[-1] == pytest.approx(99 * 0.05 + 0.15)  # measured from the schedule, not the late start
    two_users = ShortfallCounter()
    serve(due, pool=2, service_s=0.15, counter=two_users)
    assert two_users.late == 0
    short.drop(20.0)
    summary = short.summary()
    assert (summary["dropped"], summary["scheduled"], short.shortfall) == (1, 101, 100)
    assert summary["lateness_mean_s"] == pytest.approx(99 * 0.05 / 2)
    assert ShortfallCounter().summary()["lateness_p95_s"] is None


def test_achieved_rate_is_measured_over_the_paced_window_of_all_processes() -> None:
    """Two processes pace unequal shares over overlapping windows; the merged rate is starts over the union.

    Dividing by a whole run that includes start-up, or averaging the two processes' rates (15/s), would miss 29/s.
    """
    first, second = ShortfallCounter(), ShortfallCounter()
    first.open(100.0)
    for n in range(200):  # 20/s for 10 s
        first.record(100.0 + n / 20, 100.0 + n / 20)
    first.close(110.0)
    second.open(101.0)
    for n in range(90):  # 10/s for 9 s, starting a second later
        second.record(101.0 + n / 10, 101.0 + n / 10)
    second.close(110.0)
    assert second.achieved_rate_per_s == 10.0
    merged = ShortfallCounter()
    for part in (second, first):
        merged.merge_message(part.to_message())
    assert (merged.paced_from, merged.paced_until, merged.paced_s) == (100.0, 110.0, 10.0)
    assert merged.summary()["achieved_rate_per_s"] == 29.0  # 290 starts in the 10 s both paced within
    assert ShortfallCounter().achieved_rate_per_s is None  # never paced: no rate, not zero
