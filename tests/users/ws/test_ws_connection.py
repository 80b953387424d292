"""A WebSocket connection receives with as little as it takes: a message that arrives whole is handed to its listener
by the event loop itself, with no receive greenlet, timed at its arrival; messages that arrive together go through a
receive greenlet, in order, timed when they arrived; the handshake's objects are freed at once. Against demobot's
group chat, in a process patched as Locust's (tests/ws_receive_probe.py)."""

from __future__ import annotations

from typing import Any

import pytest

from demobot.launcher import DemobotProcess
from tests.conftest import probe_figures
from users.ws.ws_frames import BINARY, CLOSE, TEXT, client_frame, whole_message


@pytest.fixture(scope="module")
def received() -> dict[str, Any]:
    with DemobotProcess() as bot:
        return probe_figures("ws_receive_probe.py", bot.url)


def test_a_whole_message_is_handed_over_by_the_loop_with_no_greenlet(received: dict[str, Any]) -> None:
    one = received["one"]
    assert one["socket"].startswith("gevent")  # as in a Locust process
    (message,) = one["heard"]
    assert message["text"] == "hello" and message["in_loop"]  # handed over in the loop's own greenlet
    assert not one["receiving_greenlet"]  # and none was started (it would linger for a second)
    assert one["sent"] < message["arrived"] <= message["handed"]


def test_messages_that_arrive_together_go_through_a_receive_greenlet_in_order(received: dict[str, Any]) -> None:
    together = received["together"]
    echoes, later = together["heard"][:3], together["heard"][3]
    assert [echo["text"] for echo in echoes] == ["m0", "m1", "m2"]
    assert not any(echo["in_loop"] for echo in echoes) and together["receiving_greenlet"]
    assert len({echo["arrived"] for echo in echoes}) == 1  # one read, one arrival
    assert echoes[0]["arrived"] < together["held_until"] < echoes[0]["handed"]  # timed at arrival, not at the read
    assert not together["receiving_greenlet_later"]  # it ended after its linger; the loop watches the socket again
    assert later["text"] == "later" and later["in_loop"]


def test_a_connection_leaves_nothing_for_the_cyclic_collector(received: dict[str, Any]) -> None:
    assert received["garbage"] == 0  # websocket-client's objects are freed as soon as the handshake is over


def test_only_one_whole_unmasked_text_or_binary_frame_is_a_whole_message() -> None:
    def frame(payload: bytes, opcode: int = TEXT, final: bool = True) -> bytes:
        size = len(payload)
        length = bytes([size]) if size < 126 else b"\x7e" + size.to_bytes(2, "big")
        return bytes([(0x80 if final else 0) | opcode]) + length + payload

    assert whole_message(frame(b"hi"), 100) == b"hi"
    assert whole_message(frame(b"x" * 300, BINARY), 1000) == b"x" * 300  # a 16-bit length
    assert whole_message(frame(b""), 100) == b""
    assert whole_message(frame(b"x" * 300), 299) is None  # over the bound: the frame reader names the failure
    assert whole_message(frame(b"hi") * 2, 100) is None  # two messages
    assert whole_message(frame(b"hi")[:-1], 100) is None  # a part of one
    assert whole_message(frame(b"hi", final=False), 100) is None  # a first fragment
    assert whole_message(frame(b"\x03\xe8", CLOSE), 100) is None  # a control frame
    assert whole_message(client_frame("hi"), 100) is None  # masked: servers must not, the frame reader unmasks
    assert whole_message(b"\x81", 100) is None
