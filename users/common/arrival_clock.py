"""When bytes reached the machine, from the kernel, not when the load generator got round to reading them.

A busy Locust process reads a socket late: another user's greenlet holds the event loop, a garbage collection runs,
a batch of users is spawned. Timed by the clock at the read, a first token that arrived on time reads as late as
the loop was busy, and the tool blames the chatbot for its own load. Linux can stamp each packet as it arrives
(``SO_TIMESTAMPNS``): a read then also says when its newest bytes arrived, however late the read itself ran.

The kernel merges packets waiting in a socket's queue and keeps the newest one's stamp, so a read that takes several
events at once gets the arrival of the last of them: exact for a first token read on its own, and never later than
the clock at the read. Where stamps are not available (TLS sockets, other systems) the clock at the read is used;
so it is for the first milliseconds after the first socket of the machine asks (the kernel turns stamping on in a
work item).
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import struct
import sys
import time
from typing import Any

from gevent.socket import socket as PlainSocket

from core.speedups import recv_stamped

SO_TIMESTAMPNS = 35
"""Linux's option number (the generic value, used by x86-64 and arm64; Python's socket module lacks the name)."""

STAMPED_MACHINES = frozenset(("x86_64", "amd64", "aarch64", "arm64"))
"""Machines whose Linux uses the generic option number above (others number it differently)."""

ANCILLARY_SIZE = socket.CMSG_SPACE(16)
"""Room for one stamp in a ``recvmsg``'s ancillary data."""
_TIMESPEC = struct.Struct("qq")
MAX_AGE_S = 10.0
"""A stamp older than this (or in the future) is not believed: the wall clock was stepped between arrival and read
(a loop held that long has far worse problems, which the loop-lag probe reports)."""


CLOCK_VARIABLE = "CHATSWARM_ARRIVAL_CLOCK"
"""Set to ``read`` to time every read by the clock when it runs (to compare; bench/stream_ladder.py does)."""


def can_stamp() -> bool:
    """Whether this system stamps arrivals the way ``receive`` reads them (and stamps were not turned off)."""
    linux = sys.platform == "linux" and platform.machine().lower() in STAMPED_MACHINES
    return linux and os.environ.get(CLOCK_VARIABLE, "kernel") != "read"


STAMPS_AVAILABLE = can_stamp()


def stamped(sock: Any) -> Any:
    """``sock``, its arrivals now stamped by the kernel where it can (elsewhere its reads are timed by the clock)."""
    if STAMPS_AVAILABLE:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


def receive(sock: Any, size: int) -> tuple[bytes, float]:
    """Up to ``size`` bytes from a readable, stamped socket and ``time.perf_counter()`` of their arrival.

    The arrival is the kernel's stamp moved onto the performance counter by the age of the stamp at the read (both
    wall-clock readings are taken here, so the two clocks' drift over a run does not matter). Without a believable
    stamp it is the clock at the read.
    """
    if not STAMPS_AVAILABLE:  # as reads were before stamps (and where there is no recvmsg)
        return sock.recv(size), time.perf_counter()
    if recv_stamped is not None:  # the same, compiled (core/_speedups.c), for bytes that are there
        try:
            return recv_stamped(sock.fileno(), size, MAX_AGE_S)
        except BlockingIOError:
            if not isinstance(sock, PlainSocket):  # a socket that does not wait: the event loop's own reads
                raise
    # a gevent socket's recvmsg waits for the bytes
    data, ancillary, _flags, _address = sock.recvmsg(size, ANCILLARY_SIZE)
    now = time.perf_counter()
    stamp_ns = kernel_stamp_ns(ancillary)
    if stamp_ns is not None:
        age_s = (time.time_ns() - stamp_ns) / 1e9
        if 0.0 <= age_s <= MAX_AGE_S:
            return data, now - age_s
    return data, now


def kernel_stamp_ns(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The kernel's arrival stamp (wall clock, ns) in a ``recvmsg``'s ancillary data, None if none came with it."""
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(value)
            return seconds * 1_000_000_000 + nanoseconds
    return None


def read(sock: Any, size: int) -> tuple[bytes, float]:
    """``sock.recv(size)`` and ``time.perf_counter()`` of its bytes' arrival: the kernel's stamp on a plain socket
    asked to stamp (``stamped``), the clock at the read on any other (TLS)."""
    if is_plain(sock):
        return receive(sock, size)
    return sock.recv(size), time.perf_counter()


def is_plain(sock: Any) -> bool:
    """Whether ``sock`` is a plain gevent socket (not TLS), whose readability and arrivals the kernel knows exactly."""
    return type(sock) is PlainSocket
