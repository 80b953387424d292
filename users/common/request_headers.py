"""The headers every user sends (--header lines and --api-key): REST and streaming requests, health checks,
logins, and the handshakes of WebSocket chat, plenary and audio calls alike.

A value may name an environment variable (``X-Api-Key: ${BOT_KEY}``, .env included) so a secret stays off
command lines and config files. Every value is remembered as a secret (masked in every output) unless its header
is one of NOT_SECRET_HEADERS: a header's name does not reliably say whether it carries a credential
(``X-Signature``, ``X-Tenant-Id``, ``Ocp-Apim-Subscription-Key``), and masking a value too many costs nothing.

What wins when several set the same header (names compare without case): --api-key, then --header (then
--ws-header in WebSocket handshakes), then the sign-in token of --auth login/cognito for Authorization.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from core.errors import InputError
from core.redaction import remember
from core.settings import Settings, setting

DEFAULT_API_KEY_HEADER = "Authorization: Bearer"
"""Where --api-key goes unless --api-key-header says otherwise: ``Authorization: Bearer KEY``."""

NOT_SECRET_HEADERS = frozenset({"accept", "content-type", "user-agent", "anthropic-version", "openai-beta"})
"""Headers whose values are not masked: masking ``application/json`` would blank it in every failure name."""

MAX_HEADERS = 100
"""Most --header (or --ws-header) lines."""

MAX_HEADER_CHARS = 8192
"""Longest header line, after ${VAR} expansion (servers commonly refuse longer ones)."""

HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""A header name as HTTP allows it (RFC 9110 token)."""

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${NAME}`` in a value: replaced by the environment variable NAME."""


@dataclass(frozen=True)
class HeaderSettings(Settings):
    """The headers every user sends (registered with the chat options, read by every user)."""

    header: tuple[str, ...] = setting(
        (),
        "Header 'Name: value' every user sends (HTTP requests and WebSocket handshakes), repeatable; "
        "a value may be ${ENV_VAR} (from the environment or .env) to keep secrets off the command line",
        secret=True,
    )
    api_key: str = setting(
        "",
        "API key every user sends, in --api-key-header (may be ${ENV_VAR}; streaming and OpenAI Realtime "
        "calls fall back to CHATBOT_API_KEY or OPENAI_API_KEY)",
        secret=True,
    )
    api_key_header: str = setting(
        DEFAULT_API_KEY_HEADER,
        "Where --api-key goes: 'Name: Prefix' (the default sends 'Authorization: Bearer KEY') or 'Name' alone "
        "for the bare key (e.g. X-Api-Key)",
        web_ui=False,
    )

    def check(self) -> None:
        _ = self.headers, self.api_key_place

    @cached_property
    def headers(self) -> dict[str, str]:
        """The --header lines as a name → value map, ${VAR}s expanded; raises InputError for a bad line."""
        return header_map(self.header, "--header")

    @cached_property
    def api_key_place(self) -> tuple[str, str]:
        """(header name, prefix) of --api-key-header: ("Authorization", "Bearer ") by default."""
        name, _, prefix = self.api_key_header.partition(":")
        name, prefix = name.strip(), prefix.strip()
        if not HEADER_NAME.fullmatch(name):
            raise InputError(f"--api-key-header: {self.api_key_header!r} is not 'Name' or 'Name: Prefix'")
        if "\r" in prefix or "\n" in prefix:
            raise InputError("--api-key-header: the prefix must be on one line")
        return name, f"{prefix} " if prefix else ""

    def sent(self, key_variables: tuple[str, ...] = (), key_header: str = "") -> dict[str, str]:
        """The headers to send: the API key's (--api-key, else the first of ``key_variables`` set), then --header.

        ``key_header`` is where the key goes when --api-key-header is left at its default (an API preset's own
        header, e.g. Anthropic's ``x-api-key``).
        """
        key = _expand(self.api_key.strip(), "--api-key") or next(
            (os.environ[name] for name in key_variables if os.environ.get(name)), ""
        )
        if not key:
            return dict(self.headers)
        if "\r" in key or "\n" in key:
            raise InputError("--api-key: the key must be on one line")
        remember(key)
        name, prefix = self.api_key_place
        if key_header and self.api_key_header == DEFAULT_API_KEY_HEADER:
            name, prefix = key_header, ""
        return merged({name: prefix + key}, self.headers)


def add_arguments(parser: Any) -> None:
    """Register --header, --api-key and --api-key-header."""
    HeaderSettings.add_arguments(parser)


def request_headers(options: Any, key_variables: tuple[str, ...] = (), key_header: str = "") -> dict[str, str]:
    """The headers every request and handshake of a user carries; raises InputError for a bad option.

    ``key_header``: the --api-key header name when --api-key-header is left at its default (see ``sent``).
    """
    return HeaderSettings.read(options).sent(key_variables, key_header)


def header_map(lines: tuple[str, ...], flag: str) -> dict[str, str]:
    """'Name: value' lines as a map (a later line of the same name wins), values expanded and remembered.

    Errors name the line's number, never its text: a header line often carries a key.
    """
    if len(lines) > MAX_HEADERS:
        raise InputError(f"{flag}: at most {MAX_HEADERS} headers, got {len(lines)}")
    headers: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        name, sep, value = str(line).partition(":")
        name = name.strip()
        if not sep or not HEADER_NAME.fullmatch(name):
            raise InputError(f"{flag}: number {number} is not 'Name: value' (a colon after the name)")
        value = _expand(value.strip(), flag)
        if len(name) + len(value) + 2 > MAX_HEADER_CHARS:
            raise InputError(f"{flag}: number {number} is longer than {MAX_HEADER_CHARS} characters")
        if any(char in value for char in "\r\n\0"):
            raise InputError(f"{flag}: the value of number {number} must be on one line")
        if name.lower() not in NOT_SECRET_HEADERS:
            remember(value, value.rpartition(" ")[2])  # and the token alone of 'Bearer TOKEN'
        headers = merged(headers, {name: value})
    return headers


def merged(*layers: Mapping[str, str]) -> dict[str, str]:
    """Headers of several layers, a later layer's value winning for a name (names compare without case)."""
    result: dict[str, str] = {}
    for layer in layers:
        for name, value in layer.items():
            for known in [known for known in result if known.lower() == name.lower()]:
                del result[known]
            result[name] = value
    return result


def _expand(value: str, flag: str) -> str:
    """``value`` with every ``${NAME}`` replaced by the environment variable NAME (one line, exit 2 if unset)."""

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise InputError(f"{flag}: ${{{name}}} is not set (in the environment or .env)")
        return os.environ[name]

    return ENV_REFERENCE.sub(variable, value)
