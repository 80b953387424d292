"""The arrival shape (an open workload): a pool of --max-users users starts requests at --arrival-rate,
for --run-time. The pacing itself is the users' (users/common/pacing.py); the shape only keeps the pool."""

from __future__ import annotations

from typing import Any

from core.errors import InputError
from shapes.base import ChatswarmShape, UserCounts, required_run_time


class ArrivalShape(ChatswarmShape):
    """An open workload: a pool of --max-users users starts requests at --arrival-rate, for --run-time."""

    abstract = True
    name = "arrival"

    def configure(self, options: Any) -> None:
        rate = getattr(options, "arrival_rate", None)  # declared by users/common/pacing.py; shapes/ may not import it
        if not rate or float(rate) <= 0:
            raise InputError("--shape arrival needs --arrival-rate, the requests to start per second")
        self.run_time = required_run_time(options, self.name)
        self.pool = UserCounts.read(options).max_users
        if self.pool < 1:
            raise InputError("--max-users: the arrival shape's pool needs at least 1 user")

    def tick(self) -> tuple[int, float] | None:
        if self.get_run_time() >= self.run_time:
            return None
        return self.pool, self.spawn_rate(default=min(self.pool, 100))

    def outcome(self) -> dict[str, Any]:
        return {"name": self.name, "pool_users": self.pool}
