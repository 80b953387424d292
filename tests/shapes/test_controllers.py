"""Window statistics, the PID controller and the breakpoint judge, mostly by simulation."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pytest

from core.errors import InputError
from core.slo import parse_slos
from shapes.controllers.breakpoint import DUE, FINISHED, OPEN, BreakpointJudge
from shapes.controllers.ceiling import FailureCeiling
from shapes.controllers.pid import MAX_DT_WINDOWS, PIDController
from shapes.controllers.window import Snapshot, WindowStats, histogram_percentile
from tests.plant import QueueingServer, StatsRecorder

# ---------------------------------------------------------------------------------------------- window


def test_window_uses_the_histogram_difference() -> None:
    before = Snapshot(100.0, num_requests=10, num_failures=1, response_times={100: 5, 200: 5})
    after = Snapshot(105.0, num_requests=21, num_failures=4, response_times={100: 7, 200: 10, 300: 3, 1000: 1})
    window = WindowStats.between(before, after)
    assert dict(window.response_times) == {100: 2, 200: 5, 300: 3, 1000: 1}
    assert (window.count, window.failures, window.elapsed) == (11, 3, 5.0)
    assert window.fail_ratio == pytest.approx(3 / 11)
    assert window.rps == pytest.approx(11 / 5)
    # Sorted: 100 100 200 200 200 200 200 300 300 300 1000; rank int(11 * p) + 1 as Locust does.
    assert [window.percentile(p) for p in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0)] == [100, 200, 300, 1000, 1000, 1000]
    assert window.avg == pytest.approx((200 + 1000 + 900 + 1000) / 11)
    assert window.max == 1000


def test_window_percentile_is_not_an_average_of_percentiles() -> None:
    start = Snapshot(0.0)
    quiet = Snapshot(10.0, 90, 0, {100: 90})
    busy = Snapshot(20.0, 100, 0, {100: 90, 5000: 10})
    assert WindowStats.between(start, quiet).percentile(0.95) == 100
    assert WindowStats.between(quiet, busy).percentile(0.95) == 5000  # only the busy window's data
    assert WindowStats.between(start, busy).percentile(0.95) == 5000


def test_window_matches_locust_percentiles_on_hand_cases() -> None:
    # Values worked out with locust.stats.calculate_response_time_percentile's rule.
    histogram = {10: 1, 20: 1, 30: 1, 40: 1}
    assert [histogram_percentile(histogram, p) for p in (0.25, 0.5, 0.75, 0.74)] == [20, 30, 40, 30]
    assert histogram_percentile({}, 0.5) is None
    with pytest.raises(ValueError):
        histogram_percentile(histogram, 95)


def test_window_edge_cases() -> None:
    empty = WindowStats.between(Snapshot(0.0), Snapshot(10.0))
    assert empty.metrics() == dict.fromkeys(("p50", "p90", "p95", "p99", "avg", "max", "fail_ratio"), None) | {
        "rps": 0.0
    }
    # Counters went backwards (stats reset): the window is the new counts alone.
    reset = WindowStats.between(Snapshot(0.0, 50, 5, {100: 50}), Snapshot(10.0, 4, 0, {300: 4}, 1200.0))
    assert (reset.count, reset.failures, reset.percentile(0.5), reset.avg) == (4, 0, 300, 300)
    with pytest.raises(ValueError):
        WindowStats.between(Snapshot(10.0), Snapshot(5.0))
    exact = WindowStats.between(Snapshot(0.0, 2, 0, {100: 2}, 201.0), Snapshot(2.0, 4, 0, {100: 3, 200: 1}, 505.0))
    assert exact.avg == pytest.approx(152.0)
    combined = Snapshot.combine([Snapshot(5.0, 3, 1, {100: 3}, 300.0), Snapshot(5.0, 2, 0, {100: 1, 200: 1})])
    assert (combined.num_requests, combined.num_failures, dict(combined.response_times)) == (5, 1, {100: 4, 200: 1})
    assert combined.total_response_time is None


# ---------------------------------------------------------------------------------------------- PID

WINDOW_S = 10.0


@dataclass
class PidRun:
    users: list[int]
    """Users that ran each window."""
    true_ms: list[float]
    """Noise-free latency of each window."""
    failures: list[float]
    controller: PIDController


def simulate_pid(
    server: QueueingServer, controller: PIDController, windows: int = 40, lag: int = 1, with_rates: bool = False
) -> PidRun:
    """Closed loop: each window runs the decided users; the controller sees the window ``lag`` windows old."""
    users = controller.start(0.0)
    measured: list[tuple[float, float, float, float, float]] = []
    run = PidRun([], [], [], controller)
    for k in range(windows):
        start, end = k * WINDOW_S, (k + 1) * WINDOW_S
        latency = server.sample_ms(users)
        measured.append((start, end, latency, server.fail_ratio(users), server.rps(users)))
        run.users.append(users)
        run.true_ms.append(server.latency_ms(users))
        run.failures.append(server.fail_ratio(users))
        if k - lag >= 0:
            since, at, latency, fail_ratio, rps = measured[k - lag]
            users = controller.update(
                end,
                latency,
                measured_at=at,
                measured_since=since,
                fail_ratio=fail_ratio,
                rps=rps,
                avg_ms=latency if with_rates else None,
            )
    return run


def settle_window(run: PidRun, target_ms: float, ideal_users: float) -> int | None:
    """First window from which every window is within 10 % of target (or one user of ideal: integer plants)."""
    good = [
        abs(ms - target_ms) <= 0.1 * target_ms or abs(users - ideal_users) <= 1
        for ms, users in zip(run.true_ms, run.users, strict=True)
    ]
    return next((k for k in range(len(good)) if all(good[k:])), None)


PLANTS = list(itertools.product([4, 32, 200], [0.05, 0.5, 2.0], [1.5, 2.5, 4.0]))


@pytest.mark.parametrize("lag", [0, 1])
@pytest.mark.parametrize(("slots", "service_s", "ratio"), PLANTS)
def test_pid_default_gains_settle_across_plants(slots: int, service_s: float, ratio: float, lag: int) -> None:
    target_ms = ratio * service_s * 1000
    ideal = ratio * slots  # latency N*S/C equals the target
    server = QueueingServer(slots, service_s, noise=0.03, seed=slots + lag)
    run = simulate_pid(server, PIDController(target_ms, 1, 5000, window_s=WINDOW_S), lag=lag)
    settled = settle_window(run, target_ms, ideal)
    assert settled is not None and settled <= 10, (settled, run.users)
    tail = run.users[20:]
    assert max(tail) - min(tail) <= max(2, 0.12 * ideal), tail  # no sustained oscillation
    controller = run.controller
    assert controller.settled  # its own detector: the last 3 windows measured within 10 %
    assert controller.settled_at is not None and controller.settled_at <= (10 + 3) * WINDOW_S
    assert controller.settled_users == pytest.approx(ideal, rel=0.1, abs=1)
    assert controller.settled_latency_ms == pytest.approx(target_ms, rel=0.1)
    assert controller.settled_rps == pytest.approx(server.rps(ideal), rel=0.15)
    assert len(controller.history) == 40 - lag
    assert {(r.target_ms, r.time) for r in controller.history[-1:]} == {(target_ms, 40 * WINDOW_S)}


def test_pid_allows_for_think_time_when_given_rps_and_mean_latency() -> None:
    # 3 s think time with a 1.5 s target: latency grows 3x faster than users above the knee.
    server = QueueingServer(32, 0.5, noise=0.03, think_s=3.0, seed=3)
    ideal = (1.5 + 3.0) * 32 / 0.5
    run = simulate_pid(server, PIDController(1500, 1, 5000), lag=1, with_rates=True)
    settled = settle_window(run, 1500, ideal)
    assert settled is not None and settled <= 10, run.users
    assert max(run.users[settled:]) - min(run.users[settled:]) <= 0.1 * ideal


def test_pid_respects_user_limits_and_step_limits() -> None:
    server = QueueingServer(200, 0.5, noise=0.03)
    capped = simulate_pid(server, PIDController(2000, 3, 300, max_step_up=2.0, max_step_down=0.5))
    assert capped.users[0] == 3 and max(capped.users) == 300 and capped.users[-10:] == [300] * 10
    for before, after in itertools.pairwise(capped.users):
        assert 0.5 * before - 0.5 <= after <= 2.0 * before + 0.5
    floor = simulate_pid(server, PIDController(100, 5, 300, start_users=50), windows=20)
    assert floor.users[-10:] == [5] * 10  # the target is below the service time: hold the minimum
    fixed = simulate_pid(server, PIDController(1000, 40, 40))
    assert set(fixed.users) == {40}
    with pytest.raises(InputError):
        PIDController(1000, 10, 5)
    with pytest.raises(InputError):
        PIDController(0, 1, 5)


def test_pid_backs_off_on_failures_and_holds_the_integrator() -> None:
    # 32 slots, queue of 16: beyond 48 users requests are rejected; the 3x target would need 96 users.
    server = QueueingServer(32, 0.5, noise=0.03, queue_limit=16)
    run = simulate_pid(server, PIDController(1500, 1, 5000), lag=1)
    history = run.controller.history
    backoffs = [i for i, record in enumerate(history) if record.action == "backoff"]
    assert backoffs, "failures must trigger back-off"
    for i in backoffs:
        # The cut is to 0.7x (or less) of the users that produced the failures, never back up at once.
        failing_users = run.users[i]  # with one window of lag, update i saw window i
        assert history[i].users <= 0.7 * failing_users + 1
        assert all(r.users <= failing_users for r in history[i : i + 3])
    failing_windows = sum(f > 0.05 for f in run.failures)
    assert failing_windows <= 8, run.users
    assert run.users[-15:] == [48] * 15  # converges on the highest clean user count
    assert all(f == 0 for f in run.failures[-15:])


def test_failure_ceiling_bisects_between_clean_and_failing() -> None:
    ceiling = FailureCeiling()
    assert ceiling.limit == math.inf
    ceiling.record(math.log(40), failed=False)
    ceiling.record(math.log(160), failed=True)
    assert math.exp(ceiling.limit) == pytest.approx(80)
    ceiling.record(math.log(80), failed=False)
    assert math.exp(ceiling.limit) == pytest.approx(math.sqrt(80 * 160))
    ceiling.record(math.log(100), failed=True)
    ceiling.record(math.log(99), failed=False)
    assert math.exp(ceiling.limit) == pytest.approx(99)  # within 3 %: stay on the clean side
    ceiling.record(math.log(120), failed=False)  # clean above the failing count: the server got better
    assert ceiling.limit == math.inf


def test_pid_reset_starts_fresh_and_repeats_the_run() -> None:
    controller = PIDController(1000, 1, 5000)
    first = simulate_pid(QueueingServer(32, 0.5, seed=9), controller, windows=20)
    assert controller.settled and controller.history
    controller.reset()
    assert (controller.users, controller.history, controller.settled, controller.settled_users) == (1, [], False, None)
    assert controller.probing
    second = simulate_pid(QueueingServer(32, 0.5, seed=9), controller, windows=20)
    assert second.users == first.users


def test_pid_ignores_stale_and_empty_measurements() -> None:
    controller = PIDController(1000, 1, 100, start_users=10)
    controller.start(0.0)
    users = controller.update(10.0, 400.0, measured_at=10.0)
    assert users == 40 and len(controller.history) == 1  # probing: x4
    assert controller.update(11.0, 400.0, measured_at=10.0) == 40  # the same measurement again
    assert controller.update(12.0, 400.0, measured_at=9.0) == 40  # an older one
    assert controller.update(13.0, None, measured_at=13.0) == 40  # no data in the window
    assert controller.update(14.0, 0.0, measured_at=14.0) == 40
    assert len(controller.history) == 1
    assert controller.update(20.0, 400.0, measured_at=19.0) == 100  # a newer one is used (capped at max)
    late_start = PIDController(1000, 1, 100, start_users=10)
    late_start.start(50.0)
    assert late_start.update(60.0, 400.0, measured_at=45.0) == 10  # measured before the controller started


def test_pid_integrates_over_real_elapsed_time() -> None:
    def second_step(now: float) -> int:
        controller = PIDController(1000, 1, 1000, start_users=100, window_s=10.0)
        controller.start(0.0)
        assert controller.update(10.0, 1000.0) == 100  # in band: probing ends, no error
        return controller.update(now, 1210.0)  # log error -0.19, ki 0.5

    assert second_step(20.0) == round(100 * math.exp(-0.5 * math.log(1.21)))  # one window: 91
    assert second_step(15.0) == round(100 * math.exp(-0.25 * math.log(1.21)))  # half a window: 95
    stalled = round(100 * math.exp(-0.5 * MAX_DT_WINDOWS * math.log(1.21)))
    assert second_step(60.0) == stalled  # a stall counts as at most MAX_DT_WINDOWS windows: 83


def test_pid_uses_the_users_that_produced_a_lagging_measurement() -> None:
    controller = PIDController(1000, 1, 1000, start_users=100)
    controller.start(0.0)
    assert controller.update(10.0, 1000.0) == 100  # in band: probing ends
    # Half the target, measured over [8, 18] at 100 users: the estimate is 200; go halfway (log) to it.
    assert controller.update(20.0, 500.0, measured_at=18.0, measured_since=8.0) == 141
    # Twice the target, but measured over [9, 19], still at 100 users: the estimate is 50 users (a naive
    # controller would blame the 141 now running and aim for 70). Halfway from 141.4 to 50 in log is 84.
    assert controller.update(30.0, 2000.0, measured_at=19.0, measured_since=9.0) == round(math.sqrt(100 * 2**0.5 * 50))


# ---------------------------------------------------------------------------------------------- breakpoint


def run_breakpoint(
    judge: BreakpointJudge,
    server: QueueingServer,
    stats_lag_s: float = 3.0,
    stalls: dict[int, float] | None = None,
) -> tuple[list[tuple[float, int]], StatsRecorder]:
    """Tick about once a second like a Locust master; ``stalls`` maps tick number -> extra seconds lost."""
    recorder = StatsRecorder(server)
    now, users = 0.0, judge.start(0.0)
    changes = [(now, users)]
    before = None
    for tick in itertools.count():
        step = 1.0 + (stalls or {}).get(tick, 0.0)
        recorder.run(now, now + step, users)
        now += step
        phase = judge.poll(now)
        if phase == OPEN:
            before = recorder.snapshot(now, stats_lag_s)
        elif phase == DUE:
            assert before is not None
            window = WindowStats.between(before, recorder.snapshot(now, stats_lag_s))
            next_users = judge.judge(now, window.metrics())
            if next_users is None:
                break
            users = next_users
            changes.append((now, users))
        assert phase != FINISHED and tick < 10_000
    return changes, recorder


@pytest.mark.parametrize("stalls", [None, {3: 7.0, 25: 12.0, 47: 30.0, 90: 4.5, 131: 9.0}])
def test_breakpoint_finds_the_knee_within_one_step(stalls: dict[int, float] | None) -> None:
    # 40 slots x 0.2 s: latency 200 ms up to 40 users, then N * 5 ms; p95 < 400 ms breaks at 80 users.
    server = QueueingServer(40, 0.2, noise=0.05, seed=4)
    judge = BreakpointJudge(10, 10, 200, step_time_s=20, settle_time_s=5, slos=parse_slos(["p95<400", "fail_ratio<1%"]))
    changes, _ = run_breakpoint(judge, server, stalls=stalls)
    result = judge.result()
    assert result.finished and result.max_sustainable_users in (70, 80), result
    assert result.reason.startswith(f"breach at {result.max_sustainable_users + 10} users: p95 ")
    assert result.reason.endswith("> 400")
    assert [s.users for s in result.steps] == list(range(10, result.max_sustainable_users + 20, 10))
    assert result.rps == pytest.approx(server.rps(result.max_sustainable_users), rel=0.1)
    # Each step is judged on its own window only: after its settle time, never reaching into the next step.
    for step, (started, users), (ended, _next) in zip(result.steps, changes, changes[1:], strict=False):
        assert step.users == users
        assert started + 5 <= step.window_start < step.window_end == ended
        assert step.window_end >= started + 20
        assert step.p50 == pytest.approx(server.latency_ms(users), rel=0.1)  # no mixing with other steps
    rows = [step.as_row() for step in result.steps]
    assert rows[0]["users"] == 10 and rows[0]["passed"] is True and rows[-1]["breached"] == ["p95<400"]


def test_breakpoint_stops_at_max_users_or_first_step() -> None:
    server = QueueingServer(40, 0.2, noise=0.05)
    judge = BreakpointJudge(10, 25, 60, 10, 3, parse_slos(["p95<10s"]))
    assert judge.schedule == [10, 35, 60]
    run_breakpoint(judge, server)
    result = judge.result()
    assert (result.max_sustainable_users, result.reason) == (60, "reached max users (60) without a breach")
    assert len(result.steps) == 3
    tight = BreakpointJudge(50, 10, 100, 10, 3, parse_slos(["p95<100"]))
    run_breakpoint(tight, server)
    result = tight.result()
    assert (result.max_sustainable_users, result.rps, len(result.steps)) == (None, None, 1)
    assert result.reason.startswith("breach at 50 users: p95 ")


def test_breakpoint_judge_timing_and_measurement_forms() -> None:
    judge = BreakpointJudge(5, 5, 20, step_time_s=10, settle_time_s=4, slos=parse_slos(["p95[chat:simple]<500"]))
    assert judge.result().reason == "not started"
    judge.start(100.0)
    assert [judge.poll(t) for t in (101.0, 103.9)] == ["settling", "settling"]
    assert judge.poll(104.5) == OPEN and judge.window_start == 104.5
    assert judge.poll(109.0) == "measuring"
    assert judge.poll(110.2) == DUE and judge.poll(110.3) == DUE
    assert judge.judge(110.3, {"p95[chat:simple]": 300.0, "p95": 900.0, "rps": 12.0}) == 10
    # A tick stalled past the whole step: the window opens late and stays open for a minimum window.
    assert judge.poll(125.0) == OPEN
    assert judge.poll(126.0) == "measuring"
    assert judge.poll(128.0) == DUE
    assert judge.judge(128.0, lambda metric, name: 650.0 if metric == "p95" else None) is None
    result = judge.result()
    assert result.max_sustainable_users == 5 and result.rps == 12.0
    assert result.steps[1].details == ("p95[chat:simple] 650 > 500",)
    assert result.steps[1].window_start == 125.0 and result.steps[1].window_end == 128.0
    assert judge.poll(130.0) == FINISHED
    judge.reset()
    assert (judge.users, judge.steps, judge.finished) == (0, [], False)


def test_breakpoint_step_without_data_fails_and_bad_settings_are_input_errors() -> None:
    judge = BreakpointJudge(5, 5, 20, 10, 4, parse_slos(["p95<500", "ttft_p95<100"]))
    judge.start(0.0)
    judge.poll(5.0)
    judge.poll(11.0)
    assert judge.judge(11.0, {"p95": None, "rps": 0.0}) is None
    assert judge.result().reason == "breach at 5 users: no data in the step's window"
    with pytest.raises(InputError, match="settle time"):
        BreakpointJudge(5, 5, 20, 10, 10, parse_slos(["p95<500"]))
    with pytest.raises(InputError, match="at least one --slo"):
        BreakpointJudge(5, 5, 20, 10, 4, [])
    with pytest.raises(InputError, match="max >= start"):
        BreakpointJudge(50, 5, 20, 10, 4, parse_slos(["p95<500"]))


# ---------------------------------------------------------------------------------------------- arrival
