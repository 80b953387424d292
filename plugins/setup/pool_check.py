"""A request leaves when its start time is taken: geventhttpclient's check of a pooled connection no longer yields.

Before reusing a pooled keep-alive connection, geventhttpclient checks with ``select()`` that the server has not
closed it. Under gevent that is gevent's select, which hands the event loop to every other ready greenlet even with
a zero timeout, so every FastHttpUser request (Locust's own and Chatswarm's: REST, login, health, streamed answers)
left one loop cycle after its start was taken. On a busy generator that cycle is counted as the chatbot's time:
25 ms of every TTFT at 600 streams on a saturated core (bench/stream_ladder.py). The system's select answers the
same question at once (poll: no limit on socket numbers).
"""

from __future__ import annotations

import select
from typing import Any

from gevent.monkey import get_original
from geventhttpclient.connectionpool import ConnectionPool
from locust import Events

_poll = get_original("select", "poll")
"""The system's poll: gevent's yields to the loop; select() refuses sockets numbered 1024 and up (a process with a
thousand connections has them)."""


def idle_and_open(_pool: Any, sock: Any) -> bool:
    """Whether a pooled keep-alive connection can take the next request: open, and nothing to read while idle (else
    the server closed it or sent something unasked), asked of the kernel without giving up the loop."""
    try:
        if sock is None or sock.fileno() < 0:
            return False
        poller = _poll()
        poller.register(sock.fileno(), select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def register(events: Events) -> None:
    """Put the check in geventhttpclient's pool for every client of this process (locustfile.py calls it)."""
    ConnectionPool._is_socket_alive = idle_and_open
