"""PlenaryUser's settings: the group-chat protocols it speaks, its options, and the usernames it may take
(each worker its own slice of --user-range-min/--user-range-max)."""

from __future__ import annotations

import argparse
import heapq
from dataclasses import dataclass, field
from typing import Any

from gevent.event import Event

from core.errors import InputError
from core.options import add_option, option, parse_seconds_range, require_positive

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
