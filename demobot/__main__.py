"""`python -m demobot`: run the demo chatbot until SIGTERM/SIGINT; prints one readiness line when listening."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence

import uvloop
from aiohttp import web

from demobot.app import make_app
from demobot.cognito_check import CognitoKeysUnavailable
from demobot.config import BotConfig, parse_args
from demobot.launcher import PARENT_ENV
from demobot.tls import server_context

READY_LINE = "demobot listening on {scheme}://{host}:{port}"
"""The readiness contract: exactly this line on stdout (flushed) once the socket accepts connections."""

ORPHAN_CHECK_S = 1.0
"""How often demobot started by demobot.launcher checks that its parent is still there."""

SHUTDOWN_GRACE_S = 1.0
"""On SIGTERM/SIGINT, how long in-flight requests may finish before they are cancelled (aiohttp then waits up to
as long again for the cancelled handlers, so shutdown takes at most about twice this)."""


async def serve(app: web.Application, config: BotConfig, tls: ssl.SSLContext | None = None) -> None:
    """Serve `app` (over TLS when given a context) until SIGTERM or SIGINT, then shut down cleanly."""
    if config.access_log:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    access_logger = logging.getLogger("aiohttp.access") if config.access_log else None
    runner = web.AppRunner(app, access_log=access_logger, handler_cancellation=True, shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, ssl_context=tls)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        watch = asyncio.create_task(_stop_when_orphaned(stop)) if PARENT_ENV in os.environ else None
        # Only now announce readiness, so a SIGTERM sent right after the line still shuts down cleanly.
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        print(READY_LINE.format(scheme="https" if tls else "http", host=shown, port=port), flush=True)
        await stop.wait()
        if watch is not None:
            watch.cancel()
    finally:
        await runner.cleanup()


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """Stop when the process that started demobot (``DEMOBOT_PARENT_PID``) is gone, however it ended."""
    parent = int(os.environ[PARENT_ENV])
    while os.getppid() == parent:
        await asyncio.sleep(ORPHAN_CHECK_S)
    stop.set()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 after a clean shutdown, 2 (one line on stderr) when demobot cannot start."""
    config = parse_args(argv)
    try:
        app = make_app(config)
    except OSError as exc:
        print(f"demobot: error: --timing-log {config.timing_log!r} cannot be opened: {exc.strerror}", file=sys.stderr)
        return 2
    except CognitoKeysUnavailable as exc:
        print(f"demobot: error: --auth cognito: {exc}", file=sys.stderr)
        return 2
    try:
        tls = server_context(config)
    except ssl.SSLError as exc:
        print(f"demobot: error: --tls-cert/--tls-key: not a PEM certificate and its key ({exc})", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"demobot: error: --tls-cert/--tls-key cannot be read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        # uvloop roughly halves demobot's CPU per streamed token, so the test bed stays out of the way
        # of the load generator it measures.
        uvloop.run(serve(app, config, tls))
    except OSError as exc:
        # Port in use or an unknown host: the user's input, so one line and exit 2.
        print(f"demobot: error: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
