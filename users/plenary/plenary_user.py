"""PlenaryUser: one participant of a group chat, from registration to leaving the room.

The life of a participant: register over HTTP (username ``loadtest<N>``), log in, open the room's
WebSocket, join, chat every --chat-interval seconds, receive everyone's broadcasts, and with
--leave-probability leave and come back. Every message carries a stamp (users/plenary/plenary_metrics.py) so
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
own slice of that range (plugins/metrics/plenary_report.py tells it how many workers there are), so no two
simulated people share an account at the same time.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from gevent.event import Event
from locust import task
from locust.contrib.fasthttp import FastHttpSession
from locust.exception import StopUser
from locust.runners import WorkerRunner

from users.auth.providers import AuthFailed, Credentials, LoginAuth
from users.common import records
from users.common.chat_base import ChatUser, between
from users.common.http_failures import response_failure
from users.common.parking import park
from users.common.probe import judged, run_probe
from users.plenary.plenary_metrics import PROCESS_TAG, Joined, MessageSent, ReceiverLog, read_stamp, stamp_text
from users.plenary.plenary_settings import (  # noqa: F401 - add_arguments/check_options: the options of this user
    RANGE_WAIT_S,
    USERNAME_PREFIX,
    PlenaryProtocol,
    PlenarySettings,
    UserNumbers,
    add_arguments,
    check_options,
    room_for,
    user_range,
)
from users.ws.handshake import signed_handshake
from users.ws.ws_connection import WebSocketConnection, websocket_url
from users.ws.ws_failures import CLIENT, UNEXPECTED, WebSocketFailure
from users.ws.ws_limits import WsLimitSettings
from users.ws.ws_metrics import count_connections

user_numbers = UserNumbers()
"""This process's usernames; plugins/metrics/plenary_report.py configures the slice when a test starts."""


class JoinWait:
    """A join waiting for the server's answer: set when it confirms, or when the connection is lost meanwhile."""

    __slots__ = ("answered", "failure")

    def __init__(self) -> None:
        self.answered = Event()
        self.failure: WebSocketFailure | None = None


class PlenaryUser(ChatUser):
    """A participant of a group chat: joins a room, chats, receives everyone's messages, leaves and rejoins."""

    def __init__(self, environment: Any) -> None:
        self._http: FastHttpSession | None = None
        super().__init__(environment)
        self.plenary = PlenarySettings.read(environment.parsed_options)
        self.number: int | None = None
        self.room = self.plenary.room_name
        self.connection: WebSocketConnection | None = None
        self.registered = False
        """Whether the account exists; a failed registration is tried again before the next join."""
        self.in_room = False
        self.seq = 0
        self.log = ReceiverLog(self.plenary.drain_time)
        self._joining: JoinWait | None = None
        """While a join waits for the server's answer."""
        self.staggered = False
        """Whether the first wait, a random part of the interval, is over: people who join together then do not
        talk in lockstep."""

    # Derived values are properties, not attributes: an instance with more than 28 attributes keeps a full dict
    # (~1.6 KB instead of ~300 bytes), and idle participants are many.
    @property
    def protocol(self) -> PlenaryProtocol:
        return self.plenary.protocol

    @property
    def username(self) -> str:
        return "" if self.number is None else f"{USERNAME_PREFIX}{self.number}"

    @property
    def limits(self) -> WsLimitSettings:
        return WsLimitSettings.read(self.environment.parsed_options)

    @property
    def client(self) -> FastHttpSession:  # type: ignore[override]
        """The HTTP session that registers and signs in: dropped once in the room (it costs ~1.5 KB per idle
        participant), made again when a later sign-in needs it."""
        session = self._http
        if session is None:
            session = self._http = self.new_http_session()
        return session

    @client.setter
    def client(self, session: FastHttpSession | None) -> None:
        self._http = session

    def wait_time(self) -> float:
        """Wait the pause before the next message here, parked (users/common/parking.py), and have Locust sleep 0.

        Locust marks the user as waiting first, so a stop ends the wait at once, even with --stop-timeout."""
        park(self.pause() if self.staggered else self.rng.uniform(0, self.plenary.chat_interval_s[1]))
        self.staggered = True
        return 0.0

    def pause(self) -> float:
        """Seconds until the next message: --chat-interval, or a draw from its range."""
        return between(self.rng, self.plenary.chat_interval_s)

    @classmethod
    def probe(cls, environment: Any) -> str | None:
        """Join a room once before the load (register, sign in, connect, join; say nothing), counted nowhere."""
        path = PlenarySettings.read(environment.parsed_options).ws_path
        return judged(run_probe(cls, environment, PlenaryUser.on_start), cls.__name__, path=f"WebSocket {path}")

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
        self.room = room_for(self.plenary, self.number)
        if self.plenary.registration_path:
            self._register()
        if self.protocol.logs_in or self.settings.auth == "login":
            credentials = Credentials(self.username, self.plenary.user_password)
            self.auth = LoginAuth(self._login, credentials, self.settings.refresh_margin_s)
            with contextlib.suppress(AuthFailed):  # in the stats already; joining tries again
                self.auth.authorization()
        self._drop_http()
        self.enter()

    def _drop_http(self) -> None:
        """Close and drop the HTTP session: an idle participant needs none (a later sign-in makes one)."""
        session, self._http = self._http, None
        if session is not None:
            session.client.close()

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
        if self.in_room and not self.staggered:
            return  # the first turn only waits (wait_time)
        if not self.in_room and not self.enter():
            return
        if self.plenary.leave_probability and self.rng.random() < self.plenary.leave_probability:
            self.leave()
            park(self.pause())
            self.enter()
            return
        self.seq += 1
        sent_wall = time.time()
        text = stamp_text(self.number or 0, self.seq, self.plenary.message_size, sent_wall)
        message = {**self.protocol.message_fields, self.protocol.text_field: text}
        connection = self.connection
        if connection is None:
            return
        start = time.perf_counter()
        try:
            connection.send(json.dumps(message))
        except WebSocketFailure as failure:
            self.connection_lost(connection, failure)
            return
        # A message said is the group chat's exchange (totals and requests/s count it; FANOUT rows time its
        # receptions, and a message lost on the way counts in the verdict through completeness).
        self._fire("WS", "message", (time.perf_counter() - start) * 1000, None, sent_wall)
        records.publish(self.environment, MessageSent(self.room, sent_wall))

    def enter(self) -> bool:
        """Connect if needed and join the room; fires ``WS join`` (and ``WS connect`` where those differ)."""
        if self.plenary.registration_path and not self.registered:
            self._register()  # it failed before, so signing in would fail too
        if self.connection is None and not self._connect():
            return False
        if self.protocol.joins_by_message:
            failure = self._join()
            if failure is not None:
                return False
        self.in_room = True
        self.log.join(time.time())
        records.publish(self.environment, Joined())
        return True

    def _join(self) -> WebSocketFailure | None:
        """Ask to join and wait for the server's yes; fires ``WS join``; the failure, if it failed."""
        joining = self._joining = JoinWait()
        started_at, start = time.time(), time.perf_counter()
        try:
            self.connection.send(json.dumps({"type": "join", "room": self.room}))
            if not joining.answered.wait(self.settings.request_timeout_s):
                joining.failure = WebSocketFailure("join timeout", UNEXPECTED)
        except WebSocketFailure as failure:
            joining.failure = failure
        self._joining = None
        failure = joining.failure
        elapsed_ms = None if failure else (time.perf_counter() - start) * 1000
        self._fire("WS", "join", elapsed_ms, failure, started_at)
        return failure

    def leave(self, closing: bool = False) -> None:
        """Leave the room (and close the connection where leaving means that, or when the user stops)."""
        if self.in_room:
            self.in_room = False
            records.publish(self.environment, self.log.leave(self.room, time.time()))
            if self.protocol.joins_by_message and not closing and self.connection is not None:
                try:
                    self.connection.send(json.dumps({"type": "leave"}))
                except WebSocketFailure as failure:
                    self.connection_lost(self.connection, failure)
        if closing or not self.protocol.joins_by_message:
            connection, self.connection = self.connection, None
            if connection is not None:
                connection.close()

    def _register(self) -> None:
        body = {self.settings.login_user_field: self.username, "password": self.plenary.user_password}
        with self.client.post(self.plenary.registration_path, json=body, name="register", catch_response=True) as resp:
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
        connection = WebSocketConnection(self.insecure, count_connections(self.environment), self.limits)
        started_at, start = time.time(), time.perf_counter()
        name = "connect" if self.protocol.joins_by_message else "join"
        try:
            elapsed_ms = connection.connect(
                websocket_url(self.host, path, query), handshake, self.settings.request_timeout_s
            )
        except WebSocketFailure as failure:
            self._fire("WS", name, (time.perf_counter() - start) * 1000, failure, started_at)  # timed, as in every user
            if self.auth.can_refresh and failure.args[0] == "handshake HTTP 401 Unauthorized":
                self.auth.invalidate()
            return False
        self._fire("WS", name, elapsed_ms, None, started_at)
        self.connection = connection
        connection.start(self)
        return True

    def connection_lost(self, connection: WebSocketConnection, ending: WebSocketFailure | None) -> None:
        """The connection ended under us: we are out of the room; report why (once per connection)."""
        connection.close()
        if self.connection is not connection or ending is None:
            return
        self.connection = None
        if self.in_room:
            self.in_room = False
            records.publish(self.environment, self.log.leave(self.room, time.time()))
        elif self._joining is not None and not self._joining.answered.is_set():
            self._joining.failure = ending  # a refused join: reported as the join's failure
            self._joining.answered.set()
            return
        self._fire("WS", "connection", None, ending)

    def message_received(self, payload: bytes, arrived: float) -> None:
        """A message from the connection (users/ws/ws_connection.py's Listener)."""
        try:
            body = json.loads(payload)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if self.protocol.joins_by_message and body.get("type") != "message":
            if body.get("type") == "joined" and self._joining is not None:
                self._joining.answered.set()
            return
        text = body.get(self.protocol.text_field)
        stamp = read_stamp(text) if isinstance(text, str) else None
        if stamp is None:
            return
        reception = self.log.receive(stamp)
        if reception.first and stamp.process == PROCESS_TAG:
            reception.latency_ms = arrived * 1000 - stamp.sent_perf_ns / 1e6
            reception.fanout = "echo" if stamp.sender == self.number else "peers"
        records.publish(self.environment, reception)
        if reception.fanout is not None:
            self._fire("FANOUT", reception.fanout, reception.latency_ms, None, stamp.sent_wall)

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
