"""A pooled keep-alive connection is checked without giving up the event loop, and a closed one is still caught."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys

import pytest

from plugins.setup import pool_check
from tests.conftest import ROOT

HIGH_NUMBER = 1500

ORDER = """
from gevent import monkey; monkey.patch_all()  # as a Locust process is: select is gevent's
import sys, gevent
from geventhttpclient import HTTPClient
from locust import events
from plugins.setup import pool_check
if sys.argv[2] == "checked":
    pool_check.register(events)
client = HTTPClient.from_url(sys.argv[1], concurrency=1)
client.get("/health").read()  # the connection is back in the pool, idle
order = []
def ask():
    gevent.spawn(order.append, "another greenlet")
    connection = client._connection_pool.get_socket()  # what every request does first, before it sends
    order.append("request sent")
    client._connection_pool.release_socket(connection)
gevent.spawn(ask).join()
print(",".join(order))
"""


@pytest.mark.parametrize(
    ("check", "order"),
    [
        ("checked", "request sent,another greenlet"),
        # geventhttpclient's own check (gevent's select) runs the other greenlet first: a loop cycle in the request.
        # Should a new geventhttpclient stop doing that, this case fails and the plugin can go.
        ("geventhttpclient's", "another greenlet,request sent"),
    ],
)
def test_a_request_leaves_before_any_other_greenlet_runs(demobot, check: str, order: str) -> None:
    bot = demobot()
    ran = subprocess.run(
        [sys.executable, "-c", ORDER, bot.url, check], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert ran.stdout.strip() == order, ran.stderr


def test_a_connection_the_server_closed_is_not_reused() -> None:
    ours, theirs = socket.socketpair()
    assert pool_check.idle_and_open(None, ours)
    theirs.close()
    assert not pool_check.idle_and_open(None, ours)
    ours.close()
    assert not pool_check.idle_and_open(None, ours)


def test_a_connection_numbered_past_1024_is_checked_too() -> None:
    # A process with a thousand connections numbers its sockets past 1024, which select() refuses.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < HIGH_NUMBER + 1:
        pytest.skip(f"this process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, HIGH_NUMBER + 1), hard))
    ours, theirs = socket.socketpair()
    os.dup2(ours.fileno(), HIGH_NUMBER)
    high = socket.socket(fileno=HIGH_NUMBER)
    try:
        assert pool_check.idle_and_open(None, high)
        theirs.close()
        assert not pool_check.idle_and_open(None, high)
    finally:
        high.close()
        ours.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
