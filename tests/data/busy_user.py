"""A user that blocks its process's event loop: 20 ms of busy work every 100 ms (a deliberately overloaded client)."""

import time

from locust import User, constant, task


class BusyUser(User):
    wait_time = constant(0.1)

    @task
    def block(self) -> None:
        until = time.perf_counter() + 0.02
        while time.perf_counter() < until:
            pass
