"""What a WebSocket server may send before the connection is dropped: the longest message and the pings a second.

Every WebSocket user (chat, plenary, audio) reads these bounds, so that a hostile or broken server can neither
balloon the process (a 600 MB frame is refused from its header, before any of it is read) nor monopolise the
event loop (a server that pings as fast as it can is cut off as a ``ping flood``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from core.errors import InputError
from core.settings import Settings, setting
from users.common import http_failures

MAX_MESSAGE_MB_LIMIT = 1024.0
"""The largest --ws-max-message-mb accepted: more would let one connection take gigabytes."""

MAX_PINGS_LIMIT = 100_000
"""The largest --ws-max-pings accepted."""

PING_FLOOD = "ping flood"
"""The failure name of a connection the server pinged more than --ws-max-pings times in one second."""

REDIRECT_LOOP = http_failures.REDIRECT_LOOP
"""A handshake redirected more often than websocket-client follows (3xx to itself) fails as HTTP users do."""


@dataclass(frozen=True)
class WsLimitSettings(Settings):
    """The bounds on what a WebSocket server may send (every WebSocket user reads them)."""

    ws_max_message_mb: float = setting(
        16.0, "Longest WebSocket message taken from the server, in MB; longer fails as 'answer over N MB'"
    )
    ws_max_pings: int = setting(50, "Pings a second from a WebSocket server above which it fails as 'ping flood'")

    def check(self) -> None:
        if not 0 < self.ws_max_message_mb <= MAX_MESSAGE_MB_LIMIT:
            bound = f"above 0 and at most {MAX_MESSAGE_MB_LIMIT:g}"
            raise InputError(f"--ws-max-message-mb: must be {bound}, got {self.ws_max_message_mb:g}")
        if not 1 <= self.ws_max_pings <= MAX_PINGS_LIMIT:
            raise InputError(f"--ws-max-pings: must be from 1 to {MAX_PINGS_LIMIT}, got {self.ws_max_pings}")

    @cached_property
    def max_message_bytes(self) -> int:
        return int(self.ws_max_message_mb * 1024 * 1024)

    @cached_property
    def over_cap(self) -> str:
        """The failure name of a message over the cap: ``answer over 16 MB``."""
        return f"answer over {self.ws_max_message_mb:g} MB"


class PingMeter:
    """Counts a server's pings in one-second windows; ``flooded`` says when a window holds more than the bound."""

    __slots__ = ("count", "limit", "window_start")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.window_start = float("-inf")
        self.count = 0

    def flooded(self, now: float) -> bool:
        """Count one ping that came at ``now`` (``perf_counter`` seconds); True once its window is over the bound."""
        if now - self.window_start >= 1.0:
            self.window_start, self.count = now, 0
        self.count += 1
        return self.count > self.limit
