"""A simulated chat server for controller tests: C slots, service time S, closed-loop users.

With N users that never pause, latency is about ``max(S, N*S/C)`` and throughput ``min(N, C)/S``; with a think
time Z between requests, latency is ``max(S, N*S/C - Z)`` (Little's law with saturated throughput). Users beyond
``C + queue_limit`` are rejected at once (fast failures). Latencies carry multiplicative lognormal noise.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field

from shapes.controllers.window import Snapshot


def bucket_ms(ms: float) -> int:
    """Locust's histogram rounding (``locust.stats.bucket_response_time``): about two significant digits."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return int(round(ms, -1))
    if ms < 10000:
        return int(round(ms, -2))
    return int(round(ms, -3))


@dataclass
class QueueingServer:
    """The plant: ``slots`` concurrent requests served in ``service_s`` each; extra users wait or are rejected."""

    slots: int
    service_s: float
    noise: float = 0.03
    queue_limit: int | None = None
    think_s: float = 0.0
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def admitted(self, users: float) -> float:
        """Users whose requests get a slot or a queue place (the rest are rejected)."""
        return users if self.queue_limit is None else min(users, self.slots + self.queue_limit)

    def latency_ms(self, users: float) -> float:
        """Noise-free latency of an admitted request with ``users`` closed-loop users."""
        return 1000.0 * max(self.service_s, self.admitted(users) * self.service_s / self.slots - self.think_s)

    def fail_ratio(self, users: float) -> float:
        """Share of requests rejected; a rejected user retries at once, so rejections are frequent."""
        rejected = users - self.admitted(users)
        if rejected <= 0:
            return 0.0
        served_rate = self.rps(users)
        rejected_rate = rejected / 0.005  # a rejection takes 5 ms
        return rejected_rate / (served_rate + rejected_rate)

    def sample_ms(self, users: float) -> float:
        """One noisy latency observation (a window's statistic, or one request's time)."""
        return self.latency_ms(users) * math.exp(self.rng.gauss(0.0, self.noise))

    def rps(self, users: float) -> float:
        """Completed (admitted) requests per second."""
        return self.admitted(users) / (self.latency_ms(users) / 1000.0 + self.think_s)


@dataclass
class StatsRecorder:
    """Cumulative Locust-like counters fed by the plant second by second; snapshots can be read stale."""

    server: QueueingServer
    requests: int = 0
    failures: int = 0
    histogram: Counter[int] = field(default_factory=Counter)
    total_ms: float = 0.0
    carry: float = 0.0
    log: list[Snapshot] = field(default_factory=list)

    def run(self, start: float, end: float, users: int) -> None:
        """Simulate ``users`` closed-loop users from ``start`` to ``end`` in one-second steps."""
        t = start
        while t < end - 1e-9:
            step = min(1.0, end - t)
            self.carry += self.server.rps(users) * step
            completed, self.carry = int(self.carry), self.carry - int(self.carry)
            for _ in range(completed):
                ms = self.server.sample_ms(users)
                self.histogram[bucket_ms(ms)] += 1
                self.total_ms += ms
            self.requests += completed
            t += step
            self.log.append(Snapshot(t, self.requests, self.failures, dict(self.histogram), self.total_ms))

    def snapshot(self, now: float, lag_s: float = 0.0) -> Snapshot:
        """What a master would see at ``now``: the latest state at least ``lag_s`` old."""
        seen = [s for s in self.log if s.time <= now - lag_s + 1e-9]
        latest = seen[-1] if seen else Snapshot(0.0)
        return Snapshot(
            now, latest.num_requests, latest.num_failures, latest.response_times, latest.total_response_time
        )
