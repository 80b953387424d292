"""Does the service hold steady? Two readings of a run's slices (latency and throughput per few seconds).

- **Drift** (a fixed load): the median of the slices' p50 and p95 in the first third of the run against the
  last third. A change of DRIFT_BOUND or more either way is drift: a leak, a cache warming, a queue growing.
- **Saturation** (a load that adds users): throughput that stops following the users. Between two slices
  where the users grew by SATURATION_USERS_GROWTH or more, requests/s grew by less than
  SATURATION_RPS_GROWTH: the service is at capacity from the first of them, however high the success rate.

Slices are dicts ``{"t_s", "users", "rps", "p50_ms", "p95_ms"}``; the first and last slices (partial: the
start and the end of the run) are left out. Pure functions, tested by hand-computed cases.
"""

from __future__ import annotations

import statistics
from typing import Any

DRIFT_BOUND = 0.25
"""A p50 or p95 that moved by a quarter or more between the first and last third has drifted."""

SATURATION_USERS_GROWTH = 1.5
SATURATION_RPS_GROWTH = 1.1
"""Users up by half or more while requests/s rose by less than a tenth: throughput has stopped following."""


def full_slices(slices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The slices between the run's first and last (those two are partial)."""
    return slices[1:-1]


def drift(slices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """First third against last third, for p50 and p95; None with fewer than three full slices with latency."""
    timed = [s for s in full_slices(slices) if s.get("p50_ms") is not None]
    if len(timed) < 3:
        return None
    third = len(timed) // 3
    first, last = timed[:third], timed[-third:]
    reading: dict[str, Any] = {}
    for key in ("p50_ms", "p95_ms"):
        before = statistics.median(s[key] for s in first)
        after = statistics.median(s[key] for s in last)
        change = (after - before) / before if before else 0.0
        reading[key] = {"first_third": round(before, 2), "last_third": round(after, 2), "change": round(change, 4)}
    reading["drifted"] = any(abs(reading[key]["change"]) >= DRIFT_BOUND for key in ("p50_ms", "p95_ms"))
    return reading


def saturation(slices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Where throughput stopped following the users, or None when it kept up (or users never grew enough)."""
    full = [s for s in full_slices(slices) if s.get("users")]
    for i, before in enumerate(full):
        for after in full[i + 1 :]:
            grew = after["users"] >= before["users"] * SATURATION_USERS_GROWTH
            if grew and after["rps"] < before["rps"] * SATURATION_RPS_GROWTH:
                return {
                    "from_users": before["users"],
                    "rps": round(before["rps"], 2),
                    "at_users": after["users"],
                    "rps_then": round(after["rps"], 2),
                }
    return None


def describe_drift(reading: dict[str, Any]) -> str:
    """``latency steady …: p50 101 → 103 ms (+2%)`` or ``latency drifted …: p50 100 → 180 ms (+80%), p95 …``."""
    p50 = reading["p50_ms"]
    moved = f"p50 {p50['first_third']:g} → {p50['last_third']:g} ms ({p50['change']:+.0%})"
    if not reading["drifted"]:
        return f"latency steady from the first to the last third: {moved}"
    p95 = reading["p95_ms"]
    return (
        f"latency drifted from the first to the last third: {moved}, "
        f"p95 {p95['first_third']:g} → {p95['last_third']:g} ms ({p95['change']:+.0%})"
    )


def describe_saturation(reading: dict[str, Any]) -> str:
    """``throughput flat at 41.3 req/s from 8 users (41.0 req/s at 16 users)``."""
    return (
        f"throughput flat at {reading['rps']:g} req/s from {reading['from_users']} users "
        f"({reading['rps_then']:g} req/s at {reading['at_users']} users)"
    )
