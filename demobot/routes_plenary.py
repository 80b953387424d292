"""demobot's group chat ("plenary"): rooms everyone in them hears, with a broadcast delay, losses and a capacity.

``GET /ws/plenary?user=NAME`` upgrades to a WebSocket (under ``--auth required`` it needs a bearer token,
as /ws/chat). On it the client sends:

- ``{"type": "join", "room"}`` → ``{"type": "joined", "room", "members"}``; the others get
  ``{"type": "join", "room", "user"}``. A room at ``--room-capacity`` answers
  ``{"type": "error", "error": "room full"}`` and closes with 1013 (try again later).
- ``{"type": "message", "text"}`` → after ``--broadcast-delay-ms``, every member of the room, the sender
  too, gets ``{"type": "message", "room", "user", "text"}``; each delivery is dropped with probability
  ``--broadcast-drop-rate``, so tests can check a client's loss count against a known share.
- ``{"type": "leave"}`` → ``{"type": "left"}``; the others get ``{"type": "leave", "room", "user"}``.

The ``ws-close`` and ``ws-silent`` faults (``--fault``, demobot/faults.py) drop the connection at, or ignore,
a share of joins and chat messages.

Registration and login are demobot's account routes (/api/auth/register, /api/auth/login);
``GET /api/rooms`` lists the rooms with their member counts and the broadcast counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from demobot.faults import WS_FAULTS, pick_fault, reset_connection
from demobot.routes_ws import INVALID_PAYLOAD, handshake_refusal
from demobot.state import STATE

TRY_AGAIN_LATER = 1013
"""Close code for a join refused because the room is full."""


@dataclass(eq=False)
class Member:
    """One connection and the room it is in (None between rooms)."""

    ws: web.WebSocketResponse
    user: str
    room: str | None = None


@dataclass
class Rooms:
    """Every room's members, and what the broadcasts did."""

    members: dict[str, set[Member]] = field(default_factory=dict)
    messages: int = 0
    deliveries: int = 0
    dropped: int = 0
    refused_joins: int = 0
    pending: set[asyncio.Task] = field(default_factory=set)
    """Broadcasts waiting for their delay (kept so they are not garbage-collected)."""

    def join(self, member: Member, room: str, capacity: int) -> int | None:
        """Put ``member`` in ``room``; the new member count, or None when the room is full."""
        self.leave(member)
        members = self.members.setdefault(room, set())
        if capacity and len(members) >= capacity:
            self.refused_joins += 1
            return None
        members.add(member)
        member.room = room
        return len(members)

    def leave(self, member: Member) -> str | None:
        """Take ``member`` out of its room; the room it left, if any."""
        room, member.room = member.room, None
        if room is not None:
            members = self.members.get(room, set())
            members.discard(member)
            if not members:
                self.members.pop(room, None)
        return room


ROOMS = web.AppKey("demobot_rooms", Rooms)
_guest_numbers = itertools.count(1)


async def plenary_ws(request: web.Request) -> web.StreamResponse:
    """Group chat WebSocket: join a room, broadcast messages to all its members, leave."""
    refusal = handshake_refusal(request)
    if refusal is not None:
        return refusal
    rooms = request.app[ROOMS]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    member = Member(ws, request.query.get("user") or f"guest-{next(_guest_numbers)}")
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                body = json.loads(message.data)
            except ValueError:
                body = None
            fault = _fault(request) if isinstance(body, dict) and body.get("type") in ("join", "message") else None
            if fault == "ws-close":
                reset_connection(request)
                break
            if fault == "ws-silent":
                continue  # taken, never answered: no "joined", no broadcast
            if not isinstance(body, dict) or not await _handle(request, rooms, member, body):
                break
    finally:
        room = rooms.leave(member)
        if room is not None:
            _announce(rooms, room, {"type": "leave", "room": room, "user": member.user})
    return ws


def _fault(request: web.Request) -> str | None:
    """The --fault a join or chat message suffers, if any."""
    state = request.app[STATE]
    return pick_fault(state.config.faults, "plenary", WS_FAULTS, state.rng)


async def _handle(request: web.Request, rooms: Rooms, member: Member, body: dict) -> bool:
    """Act on one client message; False when the connection is to be closed."""
    config = request.app[STATE].config
    kind, ws = body.get("type"), member.ws
    if kind == "join" and isinstance(body.get("room"), str) and body["room"]:
        room = body["room"]
        count = rooms.join(member, room, config.room_capacity)
        if count is None:
            await ws.send_json({"type": "error", "error": "room full"})
            await ws.close(code=TRY_AGAIN_LATER, message=b"room full")
            return False
        await ws.send_json({"type": "joined", "room": room, "members": count})
        _announce(rooms, room, {"type": "join", "room": room, "user": member.user}, skip=member)
    elif kind == "leave":
        room = rooms.leave(member)
        await ws.send_json({"type": "left", "room": room})
        if room is not None:
            _announce(rooms, room, {"type": "leave", "room": room, "user": member.user})
    elif kind == "message" and isinstance(body.get("text"), str):
        if member.room is None:
            await ws.send_json({"type": "error", "error": "join a room first"})
            return True
        rooms.messages += 1
        payload = {"type": "message", "room": member.room, "user": member.user, "text": body["text"]}
        task = asyncio.create_task(_broadcast(request.app, member.room, payload, config.broadcast_delay_ms / 1000))
        rooms.pending.add(task)
        task.add_done_callback(rooms.pending.discard)
    else:
        await ws.close(code=INVALID_PAYLOAD, message=b"expected join, leave or message")
        return False
    return True


async def _broadcast(app: web.Application, room: str, payload: dict, delay_s: float) -> None:
    """After the delay, send ``payload`` to everyone in the room then, dropping the configured share."""
    if delay_s > 0:
        await asyncio.sleep(delay_s)
    state, rooms = app[STATE], app[ROOMS]
    drop_rate = state.config.broadcast_drop_rate
    data = json.dumps(payload)
    for member in list(rooms.members.get(room, ())):
        if drop_rate and state.rng.random() < drop_rate:
            rooms.dropped += 1
            continue
        with contextlib.suppress(ConnectionError, RuntimeError):
            await member.ws.send_str(data)
            rooms.deliveries += 1


def _announce(rooms: Rooms, room: str, event: dict, skip: Member | None = None) -> None:
    """Tell the room's members (but ``skip``) about a join or leave, without waiting for slow readers."""
    data = json.dumps(event)

    async def send_all() -> None:
        for member in list(rooms.members.get(room, ())):
            if member is not skip:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await member.ws.send_str(data)

    task = asyncio.create_task(send_all())
    rooms.pending.add(task)
    task.add_done_callback(rooms.pending.discard)


async def list_rooms(request: web.Request) -> web.Response:
    """The rooms with their member counts, and the broadcast counters (messages, deliveries, dropped)."""
    rooms = request.app[ROOMS]
    return web.json_response(
        {
            "rooms": [{"name": name, "members": len(members)} for name, members in sorted(rooms.members.items())],
            "messages": rooms.messages,
            "deliveries": rooms.deliveries,
            "dropped": rooms.dropped,
            "refused_joins": rooms.refused_joins,
        }
    )


def setup(app: web.Application) -> None:
    """Register the plenary routes and their room state."""
    app[ROOMS] = Rooms()
    app.router.add_get("/ws/plenary", plenary_ws)
    app.router.add_get("/api/rooms", list_rooms)
