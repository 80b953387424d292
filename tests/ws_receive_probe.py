"""How a WebSocketConnection receives, in a process patched the way Locust patches its own (the test process is not:
pytest-xdist's workers need real threads). Run by tests/users/ws/test_ws_connection.py against demobot's group chat
(its URL the one argument); prints one JSON line."""

from gevent import monkey

monkey.patch_all()

import gc  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gevent  # noqa: E402

from users.ws.ws_connection import (  # noqa: E402
    RECEIVE_BYTES,
    RECEIVER_LINGER_S,
    Handshake,
    WebSocketConnection,
    websocket_url,
)
from users.ws.ws_failures import WebSocketFailure  # noqa: E402
from users.ws.ws_frames import FrameReader  # noqa: E402

hold_the_loop = monkey.get_original("time", "sleep")
"""A sleep that does not yield: every greenlet, the loop's own included, waits it out."""


class Heard:
    """A listener that notes each message: its text, when it arrived, when it was handed over, whether by the loop."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def message_received(self, payload: bytes, arrived: float) -> None:
        handed, in_loop = time.perf_counter(), gevent.getcurrent() is gevent.get_hub()
        text = json.loads(payload).get("text")
        self.messages.append({"text": text, "arrived": arrived, "handed": handed, "in_loop": in_loop})

    def connection_lost(self, connection: WebSocketConnection, ending: WebSocketFailure | None) -> None:
        self.messages.append({"lost": str(ending)})

    def wait_for(self, count: int) -> None:
        deadline = time.perf_counter() + 10
        while len(self.messages) < count and time.perf_counter() < deadline:
            gevent.sleep(0.005)


def hold_until_queued(connection: WebSocketConnection, frames: int) -> None:
    """Hold the loop (every greenlet waits) until ``frames`` whole frames wait in the socket, for 10 s at most."""
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        try:
            queued = connection.sock._sock.recv(RECEIVE_BYTES, socket.MSG_PEEK)  # looked at, left for the read
        except BlockingIOError:
            queued = b""
        if len(FrameReader(RECEIVE_BYTES).feed(queued)) >= frames:
            return
        hold_the_loop(0.005)


def in_room(url: str, user: str) -> tuple[WebSocketConnection, Heard]:
    """A connection to demobot's group chat, joined to a room of its own (its "joined" heard)."""
    connection = WebSocketConnection()
    connection.connect(websocket_url(url, "/ws/plenary", {"user": user}), Handshake(), 10)
    heard = Heard()
    connection.start(heard)
    connection.send(json.dumps({"type": "join", "room": f"room_{user}"}))
    heard.wait_for(1)
    return connection, heard


def one_message(url: str) -> dict[str, Any]:
    connection, heard = in_room(url, "alone")
    sent = time.perf_counter()
    connection.send(json.dumps({"type": "message", "text": "hello"}))
    heard.wait_for(2)
    found = {"socket": type(connection.sock).__module__, "sent": sent, "heard": heard.messages[1:]}
    found["receiving_greenlet"] = connection._receiver is not None  # one would linger RECEIVER_LINGER_S
    connection.close()
    return found


def messages_together(url: str) -> dict[str, Any]:
    connection, heard = in_room(url, "talker")
    for number in range(3):
        connection.send(json.dumps({"type": "message", "text": f"m{number}"}))
    hold_until_queued(connection, 3)  # the three echoes wait in the socket: one read takes them all
    found: dict[str, Any] = {"held_until": time.perf_counter()}
    heard.wait_for(4)
    found["receiving_greenlet"] = connection._receiver is not None
    gevent.sleep(RECEIVER_LINGER_S + 0.3)
    found["receiving_greenlet_later"] = connection._receiver is not None
    connection.send(json.dumps({"type": "message", "text": "later"}))
    heard.wait_for(5)
    found["heard"] = heard.messages[1:]
    connection.close()
    return found


def handshake_garbage(url: str) -> int:
    """How many of websocket-client's objects three connections, opened and closed, leave to the cyclic collector."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage instead of freed
    for number in range(3):
        in_room(url, f"passer{number}")[0].close()
    gc.collect()
    found = sum(1 for thing in gc.garbage if type(thing).__module__.startswith("websocket"))
    gc.set_debug(0)
    return found


if __name__ == "__main__":
    url = sys.argv[1]
    found = {"one": one_message(url), "together": messages_together(url), "garbage": handshake_garbage(url)}
    print(json.dumps(found))
