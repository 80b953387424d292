"""PlenaryUser: one participant of a group chat, from registration to leaving the room.

The life of a participant: register over HTTP (username ``loadtest<N>``), log in, open the room's
WebSocket, join, chat every --chat-interval seconds, receive everyone's broadcasts, and with
--leave-probability leave and come back. Every message carries a stamp (users/plenary_metrics.py) so
receivers measure fan-out latency (``FANOUT echo`` for one's own message, ``FANOUT peers`` for others
in the same process) and delivery completeness (the ``plenary`` section of summary.json).

Protocols (--plenary-protocol):

- ``demobot``: ``/ws/plenary``; ``{"type": "join", "room"}`` → ``{"type": "joined"}``,
  ``{"type": "message", "text"}`` broadcast to the room as ``{"type": "message", "user", "text"}``,
  ``{"type": "leave"}``. Registration and login at demobot's account routes.
- ``channels``: the Django Channels tutorial chat, ``/ws/chat/<room>/``: connecting joins the room,
  ``{"message": text}`` is broadcast to the group as is, closing leaves. No registration unless
  --register-path is given.

Usernames come from --user-range-min/--user-range-max; in a distributed run each worker takes its
own slice of that range (plugins/plenary_report.py tells it how many workers there are), so no two
simulated people share an account at the same time.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent.event import Event
from locust import task
from locust.exception import StopUser
from locust.runners import WorkerRunner

from users import plenary_metrics
from users.auth import AuthFailed, Credentials, LoginAuth
from users.chat_base import ChatUser
from users.errors import InputError
from users.http_failures import response_failure
from users.options import add_option, option, parse_seconds_range, require_positive
from users.plenary_metrics import PROCESS_TAG, ReceiverLog, read_stamp, stamp_text
from users.ws_chat import signed_handshake
from users.ws_connection import CLIENT, UNEXPECTED, WebSocketConnection, WebSocketFailure, websocket_url

USERNAME_PREFIX = "loadtest"
WORKER_NUMBER_STRIDE = 100_000
"""Without --user-range-max, worker i numbers its users from min + i * this."""

RANGE_WAIT_S = 10.0
"""How long a worker's users wait to learn their slice of the user range from the master."""


@dataclass(frozen=True, slots=True)
class PlenaryProtocol:
    """How one kind of group-chat server is spoken to."""

    name: str
    ws_path: str
    """Path of the room's WebSocket; ``{room}`` is replaced by the room's name."""
    text_field: str
    """JSON field of a message's text, in what is sent and in what is broadcast."""
    message_fields: dict[str, Any] = field(default_factory=dict)
    """Fixed fields of a chat message, e.g. {"type": "message"}."""
    joins_by_message: bool = False
    """True: join and leave are messages on an open connection; False: connecting joins, closing leaves."""
    register_path: str = ""
    logs_in: bool = False


PROTOCOLS = {
    "demobot": PlenaryProtocol(
        "demobot",
        "/ws/plenary",
        "text",
        {"type": "message"},
        joins_by_message=True,
        register_path="/api/auth/register",
        logs_in=True,
    ),
    "channels": PlenaryProtocol("channels", "/ws/chat/{room}/", "message"),
}
"""The --plenary-protocol presets."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register PlenaryUser's options."""
    add_option(parser, "--plenary-protocol", default="demobot", choices=tuple(PROTOCOLS), help="Group-chat protocol")
    add_option(
        parser, "--plenary-path", default="", help="WebSocket path of a room, {room} = its name (default: preset)"
    )
    add_option(parser, "--room", default="plenary", help="Room everyone joins (with --rooms N: ROOM_0 … ROOM_N-1)")
    add_option(parser, "--rooms", type=int, default=1, help="Spread the users over this many rooms")
    add_option(parser, "--chat-interval", default="5", help="Seconds between a user's messages: 5 or 3-7")
    add_option(parser, "--message-size", type=int, default=100, help="Characters per chat message")
    add_option(parser, "--leave-probability", type=float, default=0.0, help="Chance per message to leave and rejoin")
    add_option(parser, "--drain-time", type=float, default=2.0, help="Seconds a message may take to reach everyone")
    add_option(
        parser,
        "--register-path",
        default="",
        help="Registration endpoint (default: the preset's; 'none' = do not register)",
    )
    add_option(parser, "--user-range-min", type=int, default=0, help="First N of the usernames loadtest<N>")
    add_option(parser, "--user-range-max", type=int, default=-1, help="Last N of the usernames (-1 = no limit)")
    add_option(
        parser, "--user-password", default="Loadtest-1", is_secret=True, help="Password of the loadtest<N> accounts"
    )


@dataclass(frozen=True, slots=True)
class PlenarySettings:
    """The plenary options of a run, parsed and checked."""

    protocol: PlenaryProtocol
    ws_path: str
    room: str
    room_count: int
    chat_interval: tuple[float, float]
    message_size: int
    leave_probability: float
    drain_s: float
    register_path: str
    password: str = field(repr=False)


def plenary_settings(options: Any) -> PlenarySettings:
    """Parse and check the plenary options; raises InputError naming the first bad one."""
    name = option(options, "plenary_protocol", "demobot")
    if name not in PROTOCOLS:
        raise InputError(f"--plenary-protocol: unknown {name!r}; choose one of {', '.join(PROTOCOLS)}")
    protocol = PROTOCOLS[name]
    count = int(option(options, "rooms", 1))
    if count < 1:
        raise InputError("--rooms: must be 1 or more")
    room = str(option(options, "room", "plenary")).strip()
    if not room:
        raise InputError("--room: must not be empty")
    leave = float(option(options, "leave_probability", 0.0))
    if not 0 <= leave <= 1:
        raise InputError(f"--leave-probability: must be a number from 0 to 1, got {leave:g}")
    register = str(option(options, "register_path", "")).strip() or protocol.register_path
    return PlenarySettings(
        protocol=protocol,
        ws_path=option(options, "plenary_path", "") or protocol.ws_path,
        room=room,
        room_count=count,
        chat_interval=parse_seconds_range(option(options, "chat_interval", "5"), "--chat-interval"),
        message_size=int(require_positive(int(option(options, "message_size", 100)), "--message-size")),
        leave_probability=leave,
        drain_s=require_positive(float(option(options, "drain_time", 2.0)), "--drain-time", allow_zero=True),
        register_path="" if register.lower() == "none" else register,
        password=option(options, "user_password", "Loadtest-1"),
    )


def room_for(settings: PlenarySettings, number: int) -> str:
    """The room of user ``loadtest<number>``: --room, or with --rooms N one of ROOM_0 … ROOM_N-1."""
    return settings.room if settings.room_count == 1 else f"{settings.room}_{number % settings.room_count}"


def check_options(options: Any) -> None:
    """Raise InputError for a bad plenary option."""
    plenary_settings(options)
    user_range(options, 0, 1)


def user_range(options: Any, worker_index: int, workers: int) -> tuple[int, int | None]:
    """The usernames one process may use, (first, last or None): its slice of the user range."""
    low, high = int(option(options, "user_range_min", 0)), int(option(options, "user_range_max", -1))
    if low < 0:
        raise InputError("--user-range-min: must be 0 or more")
    if high < 0:
        return low + worker_index * WORKER_NUMBER_STRIDE, None
    if high < low:
        raise InputError(f"--user-range-max: {high} is below --user-range-min {low}")
    size = (high - low + 1) // max(workers, 1)
    if size < 1:
        raise InputError(
            f"--user-range-min/--user-range-max: {high - low + 1} usernames cannot be split over {workers}"
        )
    first = low + worker_index * size
    return first, high if worker_index == workers - 1 else first + size - 1


class UserNumbers:
    """The usernames free in this process: a user takes the lowest free number and gives it back on stop."""

    def __init__(self) -> None:
        self.ready = Event()
        """Set once the range is known (on a worker, when the master has said how many workers share it)."""
        self.first, self.last = 0, None
        self._next = 0
        self._returned: list[int] = []
        self.in_use = 0

    @property
    def configured(self) -> bool:
        return self.ready.is_set()

    def configure(self, first: int, last: int | None) -> None:
        """Start afresh with the range [first, last] (last None: no limit)."""
        self.first, self.last = first, last
        self._next, self._returned, self.in_use = first, [], 0
        self.ready.set()

    def forget(self) -> None:
        """A new test starts: the range has to be told again."""
        self.ready.clear()

    def take(self) -> int | None:
        """The lowest free number, or None when the range is used up."""
        if self._returned:
            number = heapq.heappop(self._returned)
        elif self.last is None or self._next <= self.last:
            number, self._next = self._next, self._next + 1
        else:
            return None
        self.in_use += 1
        return number

    def give_back(self, number: int) -> None:
        heapq.heappush(self._returned, number)
        self.in_use -= 1


_shared_rng = random.Random()

user_numbers = UserNumbers()
"""This process's usernames; plugins/plenary_report.py configures the slice when a test starts."""


class PlenaryUser(ChatUser):
    """A participant of a group chat: joins a room, chats, receives everyone's messages, leaves and rejoins."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.plenary = plenary_settings(environment.parsed_options)
        self.protocol = self.plenary.protocol
        self.number: int | None = None
        self.username = ""
        self.room = self.plenary.room
        if self.settings.seed is None:
            self.rng = _shared_rng  # a Random per user costs 2.5 KB; idle participants are many
        self.connection: WebSocketConnection | None = None
        self.registered = False
        """Whether the account exists; a failed registration is tried again before the next join."""
        self.in_room = False
        self.seq = 0
        self.log = ReceiverLog(self.plenary.drain_s)
        self._joined = Event()
        """Set when the server confirms a join, or the connection is lost while waiting for it."""
        self._join_failure: WebSocketFailure | None = None

    def wait_time(self) -> float:
        low, high = self.plenary.chat_interval
        return low if low == high else self.rng.uniform(low, high)

    def on_start(self) -> None:
        if isinstance(self.environment.runner, WorkerRunner):
            user_numbers.ready.wait(RANGE_WAIT_S)
        elif not user_numbers.configured:
            user_numbers.configure(*user_range(self.environment.parsed_options, 0, 1))
        self.number = user_numbers.take() if user_numbers.configured else None
        if self.number is None:
            reason = "user range used up" if user_numbers.configured else "user range not assigned by the master"
            self._fire("WS", "join", None, WebSocketFailure(reason, CLIENT))
            return  # the first task stops this user
        self.username = f"{USERNAME_PREFIX}{self.number}"
        self.room = room_for(self.plenary, self.number)
        if self.plenary.register_path:
            self._register()
        if self.protocol.logs_in or self.settings.auth == "login":
            credentials = Credentials(self.username, self.plenary.password)
            self.auth = LoginAuth(self._login, credentials, self.settings.refresh_margin_s)
            with contextlib.suppress(AuthFailed):  # in the stats already; joining tries again
                self.auth.authorization()
        self.client.client.close()  # an idle participant needs no HTTP connection (a later login opens one)
        if self.enter():
            # Speak first after a random part of the interval, so people who join together do not
            # then talk in lockstep.
            gevent.sleep(self.rng.uniform(0, self.plenary.chat_interval[1]))

    def on_stop(self) -> None:
        self.leave(closing=True)
        if self.number is not None:
            user_numbers.give_back(self.number)
            self.number = None

    @task
    def chat(self) -> None:
        """Say one thing to the room (or, with --leave-probability, step out and come back)."""
        if self.number is None:
            raise StopUser
        if not self.in_room and not self.enter():
            return
        if self.plenary.leave_probability and self.rng.random() < self.plenary.leave_probability:
            self.leave()
            gevent.sleep(self.wait_time())
            self.enter()
            return
        self.seq += 1
        sent_wall = time.time()
        text = stamp_text(self.number or 0, self.seq, self.plenary.message_size, sent_wall)
        message = {**self.protocol.message_fields, self.protocol.text_field: text}
        connection = self.connection
        if connection is None:
            return
        try:
            connection.send(json.dumps(message))
        except WebSocketFailure as failure:
            self._lost(connection, failure)
            return
        plenary_metrics.current().message_sent(self.room, sent_wall)

    def enter(self) -> bool:
        """Connect if needed and join the room; fires ``WS join`` (and ``WS connect`` where those differ)."""
        if self.plenary.register_path and not self.registered:
            self._register()  # it failed before, so signing in would fail too
        if self.connection is None and not self._connect():
            return False
        if self.protocol.joins_by_message:
            failure = self._join()
            if failure is not None:
                return False
        self.in_room = True
        self.log.join(time.time())
        plenary_metrics.current().joins += 1
        return True

    def _join(self) -> WebSocketFailure | None:
        """Ask to join and wait for the server's yes; fires ``WS join``; the failure, if it failed."""
        self._joined.clear()
        self._join_failure = None
        started_at, start = time.time(), time.perf_counter()
        try:
            self.connection.send(json.dumps({"type": "join", "room": self.room}))
            if not self._joined.wait(self.settings.request_timeout_s):
                self._join_failure = WebSocketFailure("join timeout", UNEXPECTED)
        except WebSocketFailure as failure:
            self._join_failure = failure
        failure = self._join_failure
        elapsed_ms = None if failure else (time.perf_counter() - start) * 1000
        self._fire("WS", "join", elapsed_ms, failure, started_at)
        return failure

    def leave(self, closing: bool = False) -> None:
        """Leave the room (and close the connection where leaving means that, or when the user stops)."""
        if self.in_room:
            self.in_room = False
            stats = plenary_metrics.current()
            self.log.leave(self.room, time.time(), stats)
            stats.leaves += 1
            if self.protocol.joins_by_message and not closing and self.connection is not None:
                try:
                    self.connection.send(json.dumps({"type": "leave"}))
                except WebSocketFailure as failure:
                    self._lost(self.connection, failure)
        if closing or not self.protocol.joins_by_message:
            connection, self.connection = self.connection, None
            if connection is not None:
                connection.close()

    def _register(self) -> None:
        body = {self.settings.login_user_field: self.username, "password": self.plenary.password}
        with self.client.post(self.plenary.register_path, json=body, name="register", catch_response=True) as resp:
            if resp.status_code == 409:  # registered in an earlier run: fine
                resp.success()
            elif failure := response_failure(resp):
                resp.failure(failure)
                return
            self.registered = True

    def _connect(self) -> bool:
        signed = signed_handshake(self.environment.parsed_options, self.auth)
        if signed is None:
            return False
        query, handshake = signed
        if self.protocol.joins_by_message:
            query["user"] = self.username
        path = self.plenary.ws_path.replace("{room}", self.room)
        connection = WebSocketConnection(insecure=self.insecure)
        started_at = time.time()
        name = "connect" if self.protocol.joins_by_message else "join"
        try:
            elapsed_ms = connection.connect(
                websocket_url(self.host, path, query), handshake, self.settings.request_timeout_s
            )
        except WebSocketFailure as failure:
            self._fire("WS", name, None, failure, started_at)
            if self.auth.can_refresh and failure.args[0] == "handshake HTTP 401 Unauthorized":
                self.auth.invalidate()
            return False
        self._fire("WS", name, elapsed_ms, None, started_at)
        self.connection = connection
        connection.start(self._on_message, lambda ending: self._lost(connection, ending))
        return True

    def _lost(self, connection: WebSocketConnection, ending: WebSocketFailure | None) -> None:
        """The connection ended under us: we are out of the room; report why (once per connection)."""
        connection.close()
        if self.connection is not connection or ending is None:
            return
        self.connection = None
        if self.in_room:
            self.in_room = False
            stats = plenary_metrics.current()
            self.log.leave(self.room, time.time(), stats)
            stats.leaves += 1
        elif self.protocol.joins_by_message and not self._joined.is_set():
            self._join_failure = ending  # a refused join: reported as the join's failure
            self._joined.set()
            return
        self._fire("WS", "connection", None, ending)

    def _on_message(self, payload: bytes, arrived: float) -> None:
        try:
            body = json.loads(payload)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if self.protocol.joins_by_message and body.get("type") != "message":
            if body.get("type") == "joined":
                self._joined.set()
            return
        text = body.get(self.protocol.text_field)
        stamp = read_stamp(text) if isinstance(text, str) else None
        if stamp is None:
            return
        stats = plenary_metrics.current()
        if self.log.receive(stamp, stats) and stamp.process == PROCESS_TAG:
            latency_ms = arrived * 1000 - stamp.sent_perf_ns / 1e6
            name = "echo" if stamp.sender == self.number else "peers"
            stats.fanout[name].add(latency_ms)
            self._fire("FANOUT", name, latency_ms, None, stamp.sent_wall)

    def _fire(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        failure: WebSocketFailure | None,
        started_at: float | None = None,
    ) -> None:
        self.environment.events.request.fire(
            request_type=request_type,
            name=name,
            response_time=response_time,
            response_length=0,
            exception=failure,
            context={},
            start_time=started_at or time.time(),
        )
