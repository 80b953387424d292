"""The WebSocket opening handshake of a signed-in user: its headers (--ws-header, the token), origin and
subprotocol, or the token in the query (--ws-token-param). WebSocketChatUser and PlenaryUser both use it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import InputError
from core.redaction import remember_header
from core.settings import Settings, setting
from users.auth.providers import AuthFailed, TokenProvider
from users.ws.ws_connection import Handshake


@dataclass(frozen=True)
class HandshakeSettings(Settings):
    """The handshake's options (registered with WebSocketChatUser's, used by PlenaryUser too)."""

    origin: str = setting("", "Origin header of the WebSocket handshake (empty = none)")
    ws_header: tuple[str, ...] = setting((), "Extra handshake header 'Name: value', repeatable", web_ui=False)
    ws_subprotocol: str = setting("", "WebSocket subprotocol to ask for (empty = none)")
    ws_token_param: str = setting(
        "", "Send the sign-in token as this query parameter instead of an Authorization header"
    )

    def check(self) -> None:
        _header_lines(self.ws_header)


def _header_lines(lines: tuple[str, ...]) -> tuple[str, ...]:
    """The --ws-header lines as 'Name: value'; raises InputError for a malformed one."""
    headers = []
    for number, line in enumerate(lines, 1):
        name, sep, value = str(line).partition(":")
        if not sep or not name.strip():
            # Not echoed: a header line often carries a token.
            raise InputError(f"--ws-header: number {number} is not 'Name: value' (a colon after the name)")
        headers.append(f"{name.strip()}: {value.strip()}")
        remember_header(name, value)  # a credential header's value is masked in every output
    return tuple(headers)


def handshake_for(options: Any, authorization: str | None = None) -> Handshake:
    """The handshake's headers, origin and subprotocol; raises InputError for a malformed --ws-header."""
    settings = HandshakeSettings.read(options)
    headers = _header_lines(settings.ws_header)
    if authorization:
        headers += (f"Authorization: {authorization}",)
    return Handshake(headers=headers, origin=settings.origin or None, subprotocol=settings.ws_subprotocol or None)


def token_query(options: Any, authorization: str | None) -> dict[str, str]:
    """The query parameter carrying the token when --ws-token-param is set (without the Bearer scheme)."""
    param = HandshakeSettings.read(options).ws_token_param
    if not param or not authorization:
        return {}
    return {param: authorization.split(" ", 1)[-1]}


def signed_handshake(options: Any, auth: TokenProvider) -> tuple[dict[str, str], Handshake] | None:
    """Sign in and put the token where --ws-token-param says: the query, else the handshake's headers.

    None when signing in failed (the failed login is in the stats already).
    """
    try:
        authorization = auth.authorization()
    except AuthFailed:
        return None
    query = token_query(options, authorization)
    return query, handshake_for(options, None if query else authorization)
