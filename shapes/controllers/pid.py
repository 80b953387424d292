"""A PID controller that sets the number of users so a latency statistic holds a target.

Design (why the defaults need no tuning across servers of very different capacity):

- **Log domain, normalized.** A closed-loop server with C slots and service time S has latency about
  ``max(S, N*S/C)`` for N users: above the knee latency is proportional to users, whatever C and S are.
  So the controller works on ``u = log(users)`` and the error ``log(target / latency)``, which is
  dimensionless (about the relative error (target - latency) / target when small). In these units the
  plant has gain 1 above the knee for every server, and a gain of 1 means the same loop gains suit all.
- **Lag compensation (a Smith predictor with that unit-gain model).** Locust's numbers are seconds
  stale and ticks stall while users spawn, so a measurement often describes an older user count. The
  controller keeps its own history of decisions and looks up the users that were actually running
  during the measured window (``u_m``). ``u_m + log(target / latency)`` is then the user count that
  would give the target (exact above the knee, a lower bound below it), and the predicted error at the
  present user count is ``e = u_m + log(target / latency) - u``. The PID acts on ``e``, so a stale
  measurement is neither ignored nor mistaken for the effect of the latest change.
- **PID terms.** ``u = I + kp*e + D`` with ``I += ki*e*dt`` and the derivative on the predicted
  *measurement* (never on the error, so target changes cause no kick). ``dt`` is the real time since the
  previous update in units of the nominal window (capped at ``MAX_DT_WINDOWS`` so a long stall cannot make
  a jump). With the lag removed the loop is a static gain of 1, for which a pure integrator is the best
  controller: ``ki=0.5`` halves the log error each window without overshoot and averages noise;
  ``ki=1`` would be dead-beat but passes all measurement noise into the user count. ``kp`` and ``kd``
  default to 0 and are there for servers whose latency keeps moving for several windows after a change.
- **Anti-windup by back-calculation.** After limiting (min/max users, the per-update step limits, back-off)
  the integrator is set to what was actually applied, so it never winds up behind a limit.
- **Probing below the knee.** Where latency is flat (N < C) it says nothing about how far the knee is, so
  until latency first rises ``PROBE_RISE`` above the lowest seen (or reaches the target band) users grow by
  ``max_step_up`` per update, like TCP slow start. The first measurement past the knee is the first the
  model can invert, so that update jumps straight to the model's estimate; the integrator takes over after.
- **Rate limits.** Per update users change by at most ``max_step_up`` (x4) and ``max_step_down`` (x0.25).
- **Back-off on failures.** When the window's failure ratio exceeds ``max_fail_ratio`` the user count is cut
  to ``backoff`` times the users that produced the failures and the integrator is held there (failing
  requests are often fast, so their latency must not push users up); recovery starts from the cut level and
  is capped by a :class:`FailureCeiling` that bisects towards the highest clean user count.
- **Think time.** With think time Z latency grows faster than users; given the window's ``rps`` and mean
  latency, Little's law gives Z and the model is applied to latency + Z instead (see ``_log_levels``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import InputError
from shapes.controllers.ceiling import FailureCeiling
from shapes.controllers.settle import OperatingPoint, SettleDetector

MAX_DT_WINDOWS = 2.0
"""A late update counts as at most this many control windows of integration."""
PROBE_RISE = 0.2
"""Probing ends when latency rises this fraction above the lowest latency seen (the knee)."""


@dataclass(frozen=True)
class ControlRecord:
    """One accepted update, for the trace plot: when, what was wanted and measured, what was decided."""

    time: float
    target_ms: float
    measured_ms: float
    users: int
    fail_ratio: float = 0.0
    rps: float | None = None
    action: str = "pid"
    """``pid``, ``probe`` or ``backoff``."""


class PIDController:
    """Regulates users between ``min_users`` and ``max_users`` so the measured latency holds ``target_ms``."""

    def __init__(
        self,
        target_ms: float,
        min_users: int = 1,
        max_users: int = 1000,
        *,
        start_users: int | None = None,
        window_s: float = 10.0,
        kp: float = 0.0,
        ki: float = 0.5,
        kd: float = 0.0,
        max_step_up: float = 4.0,
        max_step_down: float = 0.25,
        max_fail_ratio: float = 0.05,
        backoff: float = 0.7,
        settle_band: float = 0.10,
        settle_windows: int = 3,
    ) -> None:
        if target_ms <= 0:
            raise InputError(f"PID target latency must be positive, got {target_ms} ms")
        if not 1 <= min_users <= max_users:
            raise InputError(f"PID users need 1 <= min ({min_users}) <= max ({max_users})")
        if max_step_up < 1 or not 0 < max_step_down <= 1 or not 0 < backoff < 1 or window_s <= 0:
            raise InputError("PID limits need max_step_up >= 1, 0 < max_step_down <= 1, 0 < backoff < 1, window > 0")
        self.target_ms = target_ms
        self.min_users = min_users
        self.max_users = max_users
        self.start_users = min(max(start_users if start_users is not None else min_users, min_users), max_users)
        self.window_s = window_s
        self.kp, self.ki, self.kd = kp, ki, kd
        self.max_step_up = max_step_up
        self.max_step_down = max_step_down
        self.max_fail_ratio = max_fail_ratio
        self.backoff = backoff
        self._settle = SettleDetector(target_ms, settle_band, settle_windows)
        self._ceiling = FailureCeiling()
        self.reset()

    def reset(self) -> None:
        """Start fresh (a restart in the web UI reuses the instance)."""
        self._u = math.log(self.start_users)
        self._integral = self._u
        self._decisions: list[tuple[float, int]] = []
        self._last_update = -math.inf
        self._last_measured_at = -math.inf
        self._last_predicted: float | None = None
        self._lowest_ms = math.inf
        self._ceiling.reset()
        self._probing = self.min_users < self.max_users
        self.history: list[ControlRecord] = []
        """Every accepted update, oldest first."""
        self._settle.reset()

    @property
    def users(self) -> int:
        """The user count currently asked for."""
        return self._decisions[-1][1] if self._decisions else self.start_users

    def start(self, now: float) -> int:
        """Begin controlling at ``now``; returns the starting user count."""
        self.reset()
        self._decisions.append((now, self.start_users))
        self._last_update = now
        return self.start_users

    def update(
        self,
        now: float,
        latency_ms: float | None,
        *,
        measured_at: float | None = None,
        measured_since: float | None = None,
        fail_ratio: float = 0.0,
        rps: float | None = None,
        avg_ms: float | None = None,
    ) -> int:
        """Take one window's measurement and return the user count to run next.

        ``measured_at`` is when the measured window ended (default ``now``) and ``measured_since`` when it
        began (default one ``window_s`` earlier). ``rps`` and ``avg_ms`` (the window's mean latency) are optional;
        given both, think time is allowed for (see ``_log_levels``). A call whose measurement is not newer than
        the one the last decision used, or that has no latency, changes nothing.
        """
        measured_at = min(now if measured_at is None else measured_at, now)
        since = measured_at - self.window_s if measured_since is None else measured_since
        if not self._decisions:
            self.start(min(since, now - self.window_s))
        if latency_ms is None or not self._accepts(now, latency_ms, measured_at):
            return self.users
        dt = min((now - self._last_update) / self.window_s, MAX_DT_WINDOWS)
        self._last_update, self._last_measured_at = now, measured_at

        u_measured = self._log_users_between(since, measured_at)
        # Smith predictor: the error at the present user count, from a measurement of the users that produced it.
        measured, wanted_level = self._log_levels(latency_ms, u_measured, rps, avg_ms)
        predicted = measured + (self._u - u_measured)
        error = wanted_level - predicted
        # Derivative on the (predicted) measurement, not on the error: a new target causes no kick.
        derivative = 0.0 if self._last_predicted is None else -self.kd * (predicted - self._last_predicted) / dt
        self._last_predicted = predicted
        proportional = self.kp * error

        failed = fail_ratio > self.max_fail_ratio
        self._ceiling.record(u_measured, failed)
        if failed:
            action, self._probing = "backoff", False
            wanted = min(self._u, u_measured + math.log(self.backoff), self._ceiling.limit)
            proportional = derivative = 0.0
        else:
            action, jump = self._probe_step(latency_ms)
            wanted = self._integral + (error if jump else self.ki * dt * error) + proportional + derivative
            if action == "probe":
                wanted = max(wanted, self._u + math.log(self.max_step_up))
            wanted = min(max(wanted, self._u + math.log(self.max_step_down)), self._u + math.log(self.max_step_up))
            wanted = min(wanted, self._ceiling.limit)
        self._u = min(max(wanted, math.log(self.min_users)), math.log(self.max_users))
        # Back-calculation: the integrator holds what was really applied, so limits cannot wind it up.
        self._integral = self._u - proportional - derivative
        users = min(max(round(math.exp(self._u)), self.min_users), self.max_users)
        if users != self.users:
            self._decisions.append((now, users))
        self.history.append(ControlRecord(now, self.target_ms, latency_ms, users, fail_ratio, rps, action))
        if action != "backoff":
            self._settle.add(OperatingPoint(measured_at, math.exp(u_measured), latency_ms, rps))
        return users

    def _accepts(self, now: float, latency_ms: float, measured_at: float) -> bool:
        """A measurement is used once, only if it has data, is newer than the last used and postdates the start."""
        return (
            latency_ms > 0
            and measured_at > self._last_measured_at
            and measured_at > self._decisions[0][0]
            and now > self._last_update
        )

    def _probe_step(self, latency_ms: float) -> tuple[str, bool]:
        """Whether this update still probes, and whether it should jump to the model's estimate (at the knee)."""
        self._lowest_ms = min(self._lowest_ms, latency_ms)
        if not self._probing:
            return "pid", False
        rising = latency_ms > self._lowest_ms * (1 + PROBE_RISE)
        if rising or self._settle.within_band(latency_ms) or latency_ms > self.target_ms:
            self._probing = False
            # The first measurement past the knee is the first the model can invert: go to its estimate at once.
            return "pid", True
        return "probe", False

    def _log_levels(
        self, latency_ms: float, u_measured: float, rps: float | None, avg_ms: float | None
    ) -> tuple[float, float]:
        """log of (measured, wanted) level of the quantity that grows in proportion to users above the knee.

        Without think time that is the latency itself. With think time Z, Little's law (users = rps * (R + Z))
        says it is R + Z, so the latency grows faster than users; Z = users / rps - mean latency needs both
        ``rps`` and ``avg_ms``. The controlled statistic is assumed to keep its ratio to the mean.
        """
        if not rps or rps <= 0 or not avg_ms or avg_ms <= 0:
            return math.log(latency_ms), math.log(self.target_ms)
        think_ms = max(0.0, 1000.0 * math.exp(u_measured) / rps - avg_ms)
        target_avg_ms = self.target_ms * avg_ms / latency_ms
        return math.log(avg_ms + think_ms), math.log(target_avg_ms + think_ms)

    def _log_users_between(self, since: float, until: float) -> float:
        """Time-weighted mean of log(users) that ran in [since, until] (the users a measurement describes)."""
        since = max(since, self._decisions[0][0])
        if until <= since:
            return math.log(next(users for start, users in reversed(self._decisions) if start <= until))
        total, end = 0.0, math.inf
        for start, users in reversed(self._decisions):  # newest first: only the window's few decisions matter
            overlap = min(end, until) - max(start, since)
            if overlap > 0:
                total += overlap * math.log(users)
            if start <= since:
                break
            end = start
        return total / (until - since)

    @property
    def probing(self) -> bool:
        """Whether the controller is still growing fast to find the knee."""
        return self._probing

    @property
    def settled(self) -> bool:
        """Whether the latest windows all measured within the settle band of the target."""
        return self._settle.settled

    @property
    def settled_at(self) -> float | None:
        """Measurement time at which the controller first settled (None if it never did)."""
        return self._settle.settled_at

    @property
    def settled_users(self) -> float | None:
        """Mean users over the latest settled run of windows (None if never settled)."""
        return self._settle.point[0] if self._settle.point else None

    @property
    def settled_latency_ms(self) -> float | None:
        """Mean measured latency over the latest settled run of windows."""
        return self._settle.point[1] if self._settle.point else None

    @property
    def settled_rps(self) -> float | None:
        """Mean requests per second over the latest settled run (None if never settled or no rps given)."""
        return self._settle.point[2] if self._settle.point else None
