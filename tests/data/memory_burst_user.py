"""A user that holds 400 MB for 50 ms once, well between two resource samples, then lets it go."""

import gevent
from locust import User, constant, task

BURST_MB = 400


class MemoryBurstUser(User):
    wait_time = constant(10)

    @task
    def burst(self) -> None:
        held = bytearray(BURST_MB * 1_000_000)
        held[::4096] = b"x" * len(range(0, len(held), 4096))  # touch every page so it is resident
        gevent.sleep(0.05)
        del held
