"""Builds demobot's aiohttp Application: shared state plus every route module's `setup(app)`."""

from __future__ import annotations

import random

from aiohttp import web

from demobot import (
    routes_audio,
    routes_auth,
    routes_bots,
    routes_chat,
    routes_meta,
    routes_openai,
    routes_plenary,
    routes_providers,
    routes_ws,
)
from demobot.accounts import AccountStore
from demobot.capacity import CapacityModel
from demobot.cognito_check import CognitoCheck
from demobot.config import BotConfig
from demobot.state import STATE, BotState
from demobot.timing_log import TimingLog

ROUTE_MODULES = (
    routes_meta,
    routes_auth,
    routes_chat,
    routes_openai,
    routes_providers,
    routes_ws,
    routes_plenary,
    routes_bots,
    routes_audio,
)
"""Each module registers its own routes; new protocols (WebSocket, faults, bot management) add theirs here."""

MAX_BODY_BYTES = 4 * 1024 * 1024


def make_state(config: BotConfig) -> BotState:
    """The shared state for one demobot: capacity model, seeded accounts, timing log (opened here).

    Under --auth cognito it fetches the pool's signing keys (raises CognitoKeysUnavailable when it cannot).
    """
    accounts = AccountStore(token_ttl_s=config.token_ttl)
    for email, password in config.accounts:
        accounts.register(email, password)
    return BotState(
        config=config,
        capacity=CapacityModel(config.slots, config.queue_limit),
        rng=random.Random(config.seed),
        accounts=accounts,
        timing_log=TimingLog(config.timing_log) if config.timing_log else None,
        cognito=_cognito_check(config),
    )


def _cognito_check(config: BotConfig) -> CognitoCheck | None:
    if config.auth != "cognito":
        return None
    return CognitoCheck.for_pool(
        config.cognito_pool_id, config.cognito_endpoint, config.cognito_client_id, config.cognito_token
    )


def make_app(config: BotConfig) -> web.Application:
    """A ready-to-run demobot Application for `config` (raises OSError if the timing log cannot be opened)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    state = make_state(config)
    app[STATE] = state

    async def close_timing_log(app: web.Application) -> None:
        if state.timing_log is not None:
            state.timing_log.close()

    app.on_cleanup.append(close_timing_log)
    for module in ROUTE_MODULES:
        module.setup(app)
    return app
