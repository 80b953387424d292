"""park(): sleeps the time asked, ends at once when the greenlet is killed, ignores stray wake-ups, and keeps
less memory per parked greenlet than gevent.sleep (what idle participants save by it), measured in a fresh
process (tests/parking_probe.py)."""

from __future__ import annotations

import time

import gevent

from tests.conftest import probe_figures
from users.common.parking import park


def test_it_sleeps_the_time_asked() -> None:
    for seconds in (0.0, 0.05, 0.2):
        start = time.perf_counter()
        park(seconds)
        assert seconds <= time.perf_counter() - start < seconds + 0.1


def test_a_kill_ends_the_wait_at_once_and_leaves_no_timer() -> None:
    loop = gevent.get_hub().loop
    parked = gevent.spawn(park, 3600)
    gevent.sleep(0.01)
    timers_while_parked = loop.activecnt
    start = time.perf_counter()
    parked.kill(block=True, timeout=1)
    assert parked.dead and time.perf_counter() - start < 0.5
    assert loop.activecnt == timers_while_parked - 1  # its timer was closed with it


def test_a_stray_wake_up_does_not_end_the_wait() -> None:
    start = time.perf_counter()
    parked = gevent.spawn(park, 0.2)
    gevent.sleep(0.02)
    gevent.get_hub().loop.run_callback(parked.switch, "stray")  # as a foreign switch into the greenlet would
    parked.join(timeout=1)
    assert parked.successful() and time.perf_counter() - start >= 0.2


def test_a_parked_greenlet_keeps_less_than_a_sleeping_one() -> None:
    traced = probe_figures("parking_probe.py")
    # bench/greenlet_park.py: 0.7 KB of resident memory
    assert traced["sleeping"] - traced["parked"] > 400, traced
