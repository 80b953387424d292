"""The WebSocket opening handshake of a signed-in user: its headers (--header and --api-key as every user sends
them, --ws-header, the token), origin and subprotocol, or the token in the query (--ws-token-param).
WebSocketChatUser and PlenaryUser both use it; AudioStreamUser sends the same headers (``ws_headers``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.settings import Settings, setting
from users.auth.providers import AuthFailed, TokenProvider
from users.common.request_headers import header_map, merged, request_headers
from users.ws.ws_connection import Handshake


@dataclass(frozen=True)
class HandshakeSettings(Settings):
    """The handshake's options (registered with WebSocketChatUser's, used by PlenaryUser too)."""

    origin: str = setting("", "Origin header of the WebSocket handshake (empty = none)")
    ws_header: tuple[str, ...] = setting(
        (), "Header 'Name: value' of WebSocket handshakes only (on top of --header), repeatable", secret=True
    )
    ws_subprotocol: str = setting("", "WebSocket subprotocol to ask for (empty = none)")
    ws_token_param: str = setting(
        "", "Send the sign-in token as this query parameter instead of an Authorization header"
    )

    def check(self) -> None:
        header_map(self.ws_header, "--ws-header")


def ws_headers(options: Any, key_variables: tuple[str, ...] = (), authorization: str | None = None) -> tuple[str, ...]:
    """A handshake's header lines: --api-key's, --header, --ws-header, then the sign-in token (later ones win)."""
    extra = header_map(HandshakeSettings.read(options).ws_header, "--ws-header")
    signed_in = {"Authorization": authorization} if authorization else {}
    headers = merged(request_headers(options, key_variables), extra, signed_in)
    return tuple(f"{name}: {value}" for name, value in headers.items())


def handshake_for(options: Any, authorization: str | None = None) -> Handshake:
    """The handshake's headers, origin and subprotocol; raises InputError for a malformed header option."""
    settings = HandshakeSettings.read(options)
    headers = ws_headers(options, authorization=authorization)
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
