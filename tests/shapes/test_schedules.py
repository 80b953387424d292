"""The time-driven schedules behind ramp, wave, burst, stability and stages (pure, no Locust)."""

from __future__ import annotations

import pytest

from core.errors import InputError
from shapes.schedules import Burst, Ramp, Stability, Stages, Wave, parse_duration


def users(schedule, times):
    return [None if (step := schedule.at(t)) is None else step[0] for t in times]


def test_ramp_steps_up_holds_and_ends() -> None:
    ramp = Ramp(start=10, step=10, step_time=30, top=35, hold_time=60, spawn_rate=10)
    assert ramp.duration == 3 * 30 + 60
    assert users(ramp, [0, 29.9, 30, 60, 90, 149.9, 150]) == [10, 10, 20, 30, 35, 35, None]
    with pytest.raises(InputError, match="--max-users"):
        Ramp(start=10, step=10, step_time=30, top=5, hold_time=0, spawn_rate=1)


def test_wave_sine_and_square() -> None:
    sine = Wave(valley=10, peak=50, waves=2, wave_time=60, form="sine", spawn_rate=5)
    assert users(sine, [0, 15, 30, 45, 60, 90, 120]) == [10, 30, 50, 30, 10, 50, None]
    square = Wave(valley=10, peak=50, waves=2, wave_time=60, form="square", spawn_rate=5)
    assert users(square, [0, 29, 30, 59, 61, 119]) == [10, 10, 50, 50, 10, 50]
    assert Wave(valley=1, peak=2, waves=10, wave_time=60, form="sine", spawn_rate=1, run_time=90).duration == 90
    with pytest.raises(InputError, match="--wave-form"):
        Wave(valley=1, peak=2, waves=1, wave_time=1, form="zigzag", spawn_rate=1)


def test_burst_adds_users_fast_then_rests() -> None:
    burst = Burst(base=5, burst_users=50, ramp_ms=500, hold_time=20, rest_time=10, bursts=2)
    assert burst.at(0) == (55, 100.0)  # 50 users within 500 ms
    assert users(burst, [19.9, 20, 29.9, 30, 50, 60]) == [55, 5, 5, 55, 5, None]


def test_stability_peaks_at_the_end_of_each_period() -> None:
    stability = Stability(base=10, peak=40, every=100, peak_time=20, run_time=300, spawn_rate=5)
    assert users(stability, [0, 79, 80, 99, 100, 299, 300]) == [10, 10, 40, 40, 10, 40, None]
    with pytest.raises(InputError, match="--peak-time"):
        Stability(base=1, peak=2, every=10, peak_time=10, run_time=60, spawn_rate=1)


def test_stages_parse_and_run_in_order() -> None:
    stages = Stages.parse("30s:10:5, 1m:50:10; 10:0:20")
    assert stages.duration == 100
    assert [stages.at(t) for t in (0, 29, 30, 89, 90, 100)] == [(10, 5), (10, 5), (50, 10), (50, 10), (0, 20), None]
    for bad in ("", "30s:10", "x:1:1", "10s:-1:1", "10s:1:0"):
        with pytest.raises(InputError, match="--stages"):
            Stages.parse(bad)
    assert parse_duration("2m") == 120 and parse_duration("1h") == 3600 and parse_duration("45") == 45
