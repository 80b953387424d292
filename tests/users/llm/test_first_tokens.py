"""The answers waiting for their first token, read at poll points (users/llm/first_tokens.py), on real loopback
sockets; what a poll point changes in a busy loop is in tests/users/llm/test_answer_reader.py."""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import pytest

from tests.conftest import loopback_pair
from users.llm import first_tokens
from users.llm.first_tokens import FirstTokens


class Reader:
    """Stands in for an AnswerReader: reads its socket at a poll point, and leaves the set after its first token (or
    stays, as a reader that has read only the body's start)."""

    def __init__(self, waiting: FirstTokens, sock: socket.socket, stops: bool = True) -> None:
        self.waiting, self.sock, self.stops = waiting, sock, stops
        self.read: list[bytes] = []

    def read_now(self) -> None:
        self.read.append(self.sock.recv(1024))
        if self.stops:
            self.waiting.discard(self.sock.fileno(), self)


def polled(waiting: FirstTokens) -> None:
    waiting.next_poll = 0.0  # a poll point after the interval
    waiting.read_ready()


def arrived(peer: socket.socket, data: bytes) -> None:
    peer.sendall(data)
    time.sleep(0.01)  # loopback delivers within the send; allow a slow machine a moment


def test_only_sockets_with_bytes_are_read_and_a_reader_that_leaves_is_read_no_more() -> None:
    waiting = FirstTokens()
    with loopback_pair() as (quiet, _), loopback_pair() as (answered, peer):
        silent, first = Reader(waiting, quiet), Reader(waiting, answered)
        going_on = Reader(waiting, answered, stops=False)
        waiting.add(quiet.fileno(), silent)
        waiting.add(answered.fileno(), first)
        arrived(peer, b"first token")
        polled(waiting)
        assert (silent.read, first.read) == ([], [b"first token"])
        arrived(peer, b"second token")  # its reader stopped at the first: out of the set
        polled(waiting)
        assert first.read == [b"first token"] and answered.recv(1024) == b"second token"
        waiting.add(answered.fileno(), going_on)  # a reader that reads on stays in the set
        for token in (b"a", b"b"):
            arrived(peer, token)
            polled(waiting)
        assert going_on.read == [b"a", b"b"]


def test_a_poll_point_within_the_interval_reads_nothing(monkeypatch) -> None:
    monkeypatch.setattr(first_tokens, "POLL_INTERVAL_S", 60.0)
    waiting = FirstTokens()
    with loopback_pair() as (client, peer):
        reader = Reader(waiting, client)
        waiting.add(client.fileno(), reader)
        waiting.read_ready()  # the first poll point: reads (nothing has come), and the next is a minute away
        arrived(peer, b"token")
        waiting.read_ready()
        assert reader.read == []
        polled(waiting)
        assert reader.read == [b"token"]


def test_a_socket_closed_in_the_set_leaves_it_and_its_number_can_be_read_for_another() -> None:
    waiting = FirstTokens()
    with loopback_pair() as (client, _):
        number, old = client.fileno(), Reader(waiting, client)
        waiting.add(number, old)
    with loopback_pair() as (client, peer):
        if client.fileno() != number:
            pytest.skip("the system gave the new socket another number")
        new = Reader(waiting, client)
        waiting.add(number, new)
        waiting.discard(number, old)  # the closed socket's reader is done: the new reader stays
        arrived(peer, b"token")
        polled(waiting)
        assert (old.read, new.read) == ([], [b"token"])


def test_a_socket_added_again_is_read_for_its_newest_reader() -> None:
    waiting = FirstTokens()
    with loopback_pair() as (client, peer):
        earlier, newest = Reader(waiting, client), Reader(waiting, client)
        waiting.add(client.fileno(), earlier)
        waiting.add(client.fileno(), newest)
        arrived(peer, b"token")
        polled(waiting)
        assert (earlier.read, newest.read) == ([], [b"token"])


def test_each_event_loop_has_one_set(monkeypatch) -> None:
    this_thread = first_tokens.first_tokens()
    assert first_tokens.first_tokens() is this_thread  # kept on the hub: every user of the loop reads the same set
    other_hub = SimpleNamespace()  # another thread's hub (gevent makes one per thread)
    monkeypatch.setattr(first_tokens, "get_hub", lambda: other_hub)
    other = first_tokens.first_tokens()
    assert other is not this_thread and first_tokens.first_tokens() is other
