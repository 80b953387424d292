"""https and wss for demobot: the server's TLS context from --tls-cert and --tls-key."""

from __future__ import annotations

import ssl

from demobot.config import BotConfig


def server_context(config: BotConfig) -> ssl.SSLContext | None:
    """The TLS context to serve with, or None for plain http; raises OSError (ssl.SSLError) for a bad file."""
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context
