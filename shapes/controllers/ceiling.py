"""Finds the highest user count that runs without failures, by bisection, so back-off does not saw-tooth."""

from __future__ import annotations

import math

CONVERGED_GAP = math.log(1.03)
"""When the clean and failing counts are within 3 %, stay at the clean one."""


class FailureCeiling:
    """Keeps the highest clean and the lowest failing log(users) seen; the limit is the point between them.

    Without failures there is no limit. After a failure at ``u_f`` the limit is halfway (in log users)
    between the highest clean count and ``u_f``; each clean window at the limit raises the clean side,
    each failure lowers the failing side, so a run converges on the boundary after a couple of failures
    instead of rising into it again and again. A clean window at or above the failing side means the
    server got better: the limit is dropped. ``reset`` forgets everything.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget all clean and failing counts."""
        self.clean = -math.inf
        self.failing = math.inf

    @property
    def limit(self) -> float:
        """The highest log(users) to ask for now (inf when no failure has been seen)."""
        if math.isinf(self.failing):
            return math.inf
        if math.isinf(self.clean):
            return self.failing + math.log(0.5)
        if self.failing - self.clean <= CONVERGED_GAP:
            return self.clean
        return (self.clean + self.failing) / 2

    def record(self, log_users: float, failed: bool) -> None:
        """Note the outcome of a window run at ``log_users`` (a time-weighted mean is fine)."""
        if failed:
            self.failing = min(self.failing, log_users)
            self.clean = min(self.clean, self.failing - CONVERGED_GAP)
        elif log_users >= self.failing:
            self.reset()
            self.clean = log_users
        else:
            self.clean = max(self.clean, log_users)
