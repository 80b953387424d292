"""The state demobot's route modules share, kept apart from app.py so routes can import it without a cycle."""

from __future__ import annotations

import random
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from aiohttp import web

from demobot.accounts import AccountStore
from demobot.capacity import CapacityModel
from demobot.cognito_check import CognitoCheck
from demobot.config import BotConfig
from demobot.timing_log import TimingLog

MAX_SESSIONS = 100_000
"""Chat sessions kept; the least recently used one is forgotten beyond this."""


@dataclass
class Counters:
    """Plain event counters reported by /stats (capacity counters live on the CapacityModel)."""

    requests: int = 0
    """Generation requests received (/api/chat and /v1/chat/completions), whatever their outcome."""
    logins: int = 0
    registrations: int = 0
    errors_injected: int = 0
    tokens_generated: int = 0


class Sessions:
    """Chat sessions by id with their turn count, bounded to `limit` entries (least recently used goes first)."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._turns: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._turns)

    def next_turn(self, session_id: str | None) -> tuple[str, int]:
        """Start a turn in `session_id` (a new session when None or unknown): returns (session_id, 1-based turn)."""
        if session_id is None:
            session_id = uuid.uuid4().hex
        turn = self._turns.pop(session_id, 0) + 1
        self._turns[session_id] = turn
        while len(self._turns) > self.limit:
            self._turns.popitem(last=False)
        return session_id, turn


@dataclass
class BotState:
    """Everything a request handler may need besides the request: config, capacity, accounts, sessions, log."""

    config: BotConfig
    capacity: CapacityModel
    rng: random.Random
    """Drives injected errors; seeded from --seed so a run is repeatable."""
    accounts: AccountStore
    sessions: Sessions = field(default_factory=Sessions)
    counters: Counters = field(default_factory=Counters)
    timing_log: TimingLog | None = None
    cognito: CognitoCheck | None = None
    """The token check of --auth cognito."""


STATE = web.AppKey("demobot_state", BotState)
"""Where the BotState lives in the aiohttp Application: `request.app[STATE]`."""


def new_request_id() -> str:
    """A fresh id for one request, sent back as X-Request-Id and used as the timing log's `id`."""
    return uuid.uuid4().hex
