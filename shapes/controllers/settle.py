"""Detects when a regulated latency has settled near its target, and remembers that operating point."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from statistics import fmean


@dataclass(frozen=True)
class OperatingPoint:
    """One control window's outcome: the users that ran it and what they measured."""

    time: float
    users: float
    latency_ms: float
    rps: float | None = None


class SettleDetector:
    """Settled = the last ``windows`` windows all measured within ``band`` (a fraction) of the target."""

    def __init__(self, target_ms: float, band: float = 0.10, windows: int = 3) -> None:
        if windows < 1:
            raise ValueError("settle windows must be at least 1")
        self.target_ms = target_ms
        self.band = band
        self.windows = windows
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new run)."""
        self._recent: deque[OperatingPoint] = deque(maxlen=self.windows)
        self.settled = False
        """Whether the most recent ``windows`` windows were all within the band."""
        self.settled_at: float | None = None
        """Time of the first window that completed a settled run (None if never settled)."""
        self.point: tuple[float, float, float | None] | None = None
        """(users, latency ms, rps) averaged over the latest settled run of windows; kept when settling is lost."""

    def within_band(self, latency_ms: float) -> bool:
        """Whether a latency is within the tolerance band around the target."""
        return abs(latency_ms - self.target_ms) <= self.band * self.target_ms

    def add(self, point: OperatingPoint) -> bool:
        """Record one window; returns whether the run is settled now."""
        if not self.within_band(point.latency_ms):
            self._recent.clear()
            self.settled = False
            return False
        self._recent.append(point)
        self.settled = len(self._recent) == self.windows
        if self.settled:
            if self.settled_at is None:
                self.settled_at = point.time
            rates = [p.rps for p in self._recent if p.rps is not None]
            self.point = (
                fmean(p.users for p in self._recent),
                fmean(p.latency_ms for p in self._recent),
                fmean(rates) if rates else None,
            )
        return self.settled
