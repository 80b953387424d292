"""The answers waiting for their first token, read at poll points between the event loop's other work.

The event loop reads a streamed answer's socket when bytes come (users/llm/answer_reader.py), once per turn of the
loop. A loaded loop's turn is long: at 900 streams here one turn reads hundreds of sockets and runs dozens of users'
steps, 10-15 ms. A first token that arrives early in a turn waits for the next turn, and when the answer's next token
arrives meanwhile, the kernel merges the two in the socket's queue: the read carries the second token's stamp, and
the TTFT reads a token gap high. So the sockets waiting for their first token are also in an epoll set of their own,
which each StreamingChatUser reads between its steps (``read_ready``: before it sleeps on an answer and after it
fires an answer's events; at most every POLL_INTERVAL_S). At 900 streams here four first tokens in five are read
there, and nine in ten of all within 3 ms of their arrival, against 8 ms without (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import contextlib
import select
from time import perf_counter
from typing import Protocol

from gevent import get_hub
from gevent.monkey import get_original

POLL_INTERVAL_S = 0.001
"""The set is read at most once this often (a token gap is 10 ms and more), however many poll points pass."""


class Reader(Protocol):
    def read_now(self) -> None:
        """Read the socket at once; the reader leaves the set itself (``discard``) once its first token is filed."""
        ...


class FirstTokens:
    """The sockets of one event loop's answers waiting for their first token, in one epoll set."""

    def __init__(self) -> None:
        self._poll = get_original("select", "epoll")()  # gevent's select has none; this one is only polled
        self._readers: dict[int, Reader] = {}
        self.next_poll = 0.0
        """perf_counter() from which a poll point reads the set again."""

    def add(self, fd: int, reader: Reader) -> None:
        try:
            self._poll.register(fd, select.EPOLLIN)
        except FileExistsError:  # added again before it was discarded
            self._poll.modify(fd, select.EPOLLIN)
        self._readers[fd] = reader

    def discard(self, fd: int, reader: Reader) -> None:
        """Take the socket out of the set (nothing happens if ``reader`` is no longer the one it is read for)."""
        if self._readers.get(fd) is reader:
            del self._readers[fd]
            with contextlib.suppress(OSError):  # a socket closed while in the set is out of it already
                self._poll.unregister(fd)

    def read_ready(self) -> None:
        """A poll point: read each socket in the set that has bytes now, unless the set was read within the last
        POLL_INTERVAL_S."""
        if (now := perf_counter()) < self.next_poll:
            return
        self.next_poll = now + POLL_INTERVAL_S
        if self._readers:
            for fd, _ in self._poll.poll(0):
                if (reader := self._readers.get(fd)) is not None:
                    reader.read_now()


HUB_ATTRIBUTE = "chatswarm_first_tokens"


def first_tokens() -> FirstTokens:
    """This event loop's set (kept on its hub: one per thread; ``threading.local`` is per greenlet once gevent has
    patched it)."""
    hub = get_hub()
    if (found := getattr(hub, HUB_ATTRIBUTE, None)) is None:
        found = FirstTokens()
        setattr(hub, HUB_ATTRIBUTE, found)
    return found


def read_first_tokens() -> None:
    """A poll point: read every first token that has come (a user between its steps)."""
    first_tokens().read_ready()
