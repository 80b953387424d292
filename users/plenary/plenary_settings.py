"""PlenaryUser's settings: the group-chat protocols it speaks, its options, and the usernames it may take
(each worker its own slice of --user-range-min/--user-range-max)."""

from __future__ import annotations

import argparse
import heapq
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from gevent.event import Event

from core.errors import InputError
from core.options import parse_seconds_range, require_positive
from core.settings import Settings, setting

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


@dataclass(frozen=True)
class PlenarySettings(Settings):
    """PlenaryUser's options, and what they mean for a run (the protocol, the interval, the usernames)."""

    plenary_protocol: str = setting("demobot", "Group-chat protocol", choices=tuple(PROTOCOLS), web_ui=True)
    plenary_path: str = setting("", "WebSocket path of a room, {room} = its name (default: preset)")
    room: str = setting("plenary", "Room everyone joins (with --rooms N: ROOM_0 … ROOM_N-1)", web_ui=True)
    rooms: int = setting(1, "Spread the users over this many rooms", web_ui=True)
    chat_interval: str = setting("5", "Seconds between a user's messages: 5 or 3-7", web_ui=True)
    message_size: int = setting(100, "Characters per chat message")
    leave_probability: float = setting(0.0, "Chance per message to leave and rejoin")
    drain_time: float = setting(2.0, "Seconds a message may take to reach everyone")
    register_path: str = setting("", "Registration endpoint (default: the preset's; 'none' = do not register)")
    user_range_min: int = setting(0, "First N of the usernames loadtest<N>")
    user_range_max: int = setting(-1, "Last N of the usernames (-1 = no limit)")
    user_password: str = setting("Loadtest-1", "Password of the loadtest<N> accounts", secret=True)

    def check(self) -> None:
        if self.rooms < 1:
            raise InputError("--rooms: must be 1 or more")
        if not self.room_name:
            raise InputError("--room: must not be empty")
        if not 0 <= self.leave_probability <= 1:
            raise InputError(f"--leave-probability: must be a number from 0 to 1, got {self.leave_probability:g}")
        parse_seconds_range(self.chat_interval, "--chat-interval")
        require_positive(self.message_size, "--message-size")
        require_positive(self.drain_time, "--drain-time", allow_zero=True)
        self.user_range(0, 1)

    @cached_property
    def protocol(self) -> PlenaryProtocol:
        return PROTOCOLS[self.plenary_protocol]

    @cached_property
    def ws_path(self) -> str:
        """Path of a room's WebSocket: --plenary-path, else the protocol's."""
        return self.plenary_path or self.protocol.ws_path

    @cached_property
    def room_name(self) -> str:
        return self.room.strip()

    @cached_property
    def chat_interval_s(self) -> tuple[float, float]:
        """--chat-interval as (low, high) seconds."""
        return parse_seconds_range(self.chat_interval, "--chat-interval")

    @cached_property
    def registration_path(self) -> str:
        """Where accounts are registered: --register-path, else the protocol's; empty = do not register."""
        register = self.register_path.strip() or self.protocol.register_path
        return "" if register.lower() == "none" else register

    def user_range(self, worker_index: int, workers: int) -> tuple[int, int | None]:
        """The usernames one process may use, (first, last or None): its slice of the user range."""
        low, high = self.user_range_min, self.user_range_max
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register PlenaryUser's options."""
    PlenarySettings.add_arguments(parser)


def check_options(options: Any) -> None:
    """Raise InputError for a bad plenary option."""
    PlenarySettings.read(options)


def room_for(settings: PlenarySettings, number: int) -> str:
    """The room of user ``loadtest<number>``: --room, or with --rooms N one of ROOM_0 … ROOM_N-1."""
    return settings.room_name if settings.rooms == 1 else f"{settings.room_name}_{number % settings.rooms}"


def user_range(options: Any, worker_index: int, workers: int) -> tuple[int, int | None]:
    """The usernames one process may use, (first, last or None): its slice of the user range."""
    return PlenarySettings.read(options).user_range(worker_index, workers)


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
