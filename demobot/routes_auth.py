"""demobot's account routes (register, login) and the bearer-token guard used by the chat routes."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from demobot.accounts import TokenStatus
from demobot.faults import http_fault
from demobot.http_util import read_json_object, simple_error
from demobot.state import STATE

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _credentials(body: dict | None) -> tuple[str, str] | None:
    if body is None:
        return None
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str) or not email.strip() or not password:
        return None
    return email.strip(), password


async def _credentials_or_refusal(request: web.Request) -> tuple[str, str] | web.Response:
    """The request's email and password, or the answer instead: a 400 when incomplete, an injected auth fault."""
    state = request.app[STATE]
    credentials = _credentials(await read_json_object(request))
    if credentials is None:
        return simple_error(400, "a JSON body with non-empty 'email' and 'password' is required")
    fault = await http_fault(request, state.config, state.rng, "auth")
    return credentials if fault is None else fault


async def register(request: web.Request) -> web.Response:
    """Create an account from {"email", "password"}: 201 {"user_id", "email"}, 409 if taken, 400 if incomplete."""
    state = request.app[STATE]
    credentials = await _credentials_or_refusal(request)
    if isinstance(credentials, web.StreamResponse):
        return credentials
    account = state.accounts.register(*credentials)
    if account is None:
        return simple_error(409, "an account with this email already exists")
    state.counters.registrations += 1
    return web.json_response({"user_id": account.user_id, "email": account.email}, status=201)


async def login(request: web.Request) -> web.Response:
    """Exchange {"email", "password"} for a bearer token: 200 {"access_token", "token_type", "expires_in"} or 401."""
    state = request.app[STATE]
    credentials = await _credentials_or_refusal(request)
    if isinstance(credentials, web.StreamResponse):
        return credentials
    email, password = credentials
    password_ok = state.accounts.check_password(email, password)
    if password_ok is None and state.config.auto_register:
        state.accounts.register(email, password)
        state.counters.registrations += 1
        password_ok = True
    if not password_ok:
        return simple_error(401, "invalid email or password")
    state.counters.logins += 1
    ttl = state.config.token_ttl
    answer: dict[str, object] = {"access_token": state.accounts.issue_token(email), "token_type": "bearer"}
    if not state.config.hide_token_expiry:
        answer["expires_in"] = int(ttl) if ttl.is_integer() else ttl
    return web.json_response(answer)


def _unauthorized(message: str) -> web.Response:
    return simple_error(401, message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def require_token(handler: Handler) -> Handler:
    """Wrap a handler so that, under `--auth required`, it needs a valid `Authorization: Bearer <token>`.

    Under `--auth cognito` it needs a valid token of the configured Cognito pool instead.
    """

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        if state.cognito is not None and (failure := state.cognito.failure(request.headers.get("Authorization", ""))):
            return _unauthorized(failure)
        if state.config.auth == "required":
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            status = state.accounts.check_token(token.strip() if scheme.lower() == "bearer" else None)
            if status is TokenStatus.EXPIRED:
                return _unauthorized("token expired")
            if status is not TokenStatus.VALID:
                return _unauthorized("missing or invalid token")
        return await handler(request)

    return guarded


def setup(app: web.Application) -> None:
    """Register the account routes."""
    app.router.add_post("/api/auth/register", register)
    app.router.add_post("/api/auth/login", login)
