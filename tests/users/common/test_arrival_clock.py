"""Reads timed at the bytes' arrival (the kernel's stamp), on a real loopback TCP connection."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import loopback_pair
from users.common import arrival_clock


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    with loopback_pair() as pair:
        yield pair


@pytest.mark.skipif(not arrival_clock.STAMPS_AVAILABLE, reason="the kernel stamps arrivals on Linux x86-64/arm64 only")
def test_bytes_read_late_are_timed_when_they_arrived(connection) -> None:
    client, peer = connection
    arrival_clock.stamped(client)
    _wait_for_stamps(client, peer)
    sending = time.perf_counter()
    peer.sendall(b"first token")  # on loopback the bytes reach the client's socket within this call
    sent = time.perf_counter()
    time.sleep(0.05)  # the loop is busy elsewhere: the read comes 50 ms late
    data, arrived = arrival_clock.receive(client, 1024)
    assert data == b"first token"
    # Within the send, give or take the stamp's conversion to perf_counter (two clocks read one after the other).
    assert sending - 0.001 <= arrived <= sent + 0.001, ((arrived - sending) * 1000, (sent - sending) * 1000)
    assert time.perf_counter() - arrived > 0.045


def test_without_stamps_a_read_is_timed_by_the_clock(connection) -> None:
    client, peer = connection
    peer.sendall(b"first token")
    time.sleep(0.05)
    reading = time.perf_counter()
    data, arrived = arrival_clock.receive(client, 1024)
    assert data == b"first token" and reading <= arrived <= time.perf_counter()


def test_stamps_can_be_turned_off(monkeypatch) -> None:
    monkeypatch.setenv(arrival_clock.CLOCK_VARIABLE, "read")
    assert not arrival_clock.can_stamp()


def _wait_for_stamps(client: socket.socket, peer: socket.socket) -> None:
    """The first socket to ask turns stamping on for the machine a moment later (a kernel work item): send probes
    until one comes back stamped (a read 5 ms late that knows it), for at most a second."""
    for _ in range(100):
        peer.sendall(b".")
        time.sleep(0.005)
        _, arrived = arrival_clock.receive(client, 1)
        if time.perf_counter() - arrived > 0.004:
            return
    pytest.fail("the kernel never stamped an arrival")
