"""demobot's self-description routes: health check, endpoint documentation, and live counters."""

from __future__ import annotations

import html

from aiohttp import web

from demobot.config import BotConfig
from demobot.faults import http_fault
from demobot.state import STATE


async def healthcheck(request: web.Request) -> web.StreamResponse:
    """Liveness probe: {"status": "ok"} while the server runs (unless a --fault ...@health says otherwise)."""
    state = request.app[STATE]
    if (fault := await http_fault(request, state.config, state.rng, "health")) is not None:
        return fault
    return web.json_response({"status": "ok"})


async def stats(request: web.Request) -> web.Response:
    """Live counters as JSON: capacity (active, queued, served, rejected, maxima), logins, errors, requests."""
    state = request.app[STATE]
    body: dict[str, object] = state.capacity.counters()
    body.update(vars(state.counters))
    body["sessions"] = len(state.sessions)
    body["accounts"] = len(state.accounts)
    if state.cognito is not None:
        body.update(state.cognito.counters())
    return web.json_response(body)


async def docs(request: web.Request) -> web.Response:
    """This page: every endpoint with a one-line description."""
    rows = []
    for method, path, summary in endpoint_summaries(request.app):
        rows.append(
            f"<tr><td><code>{html.escape(method)}</code></td><td><code>{html.escape(path)}</code></td>"
            f"<td>{html.escape(summary)}</td></tr>"
        )
    config = request.app[STATE].config
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>demobot endpoints</title></head><body>"
        "<h1>demobot</h1><p>The built-in demo chatbot of Chatswarm. "
        f"Auth: <code>{html.escape(config.auth)}</code>, slots: {config.slots}, queue limit: {config.queue_limit}, "
        f"TTFT {config.ttft_ms:g} ms, {config.token_ms:g} ms per next token, {config.answer_tokens} tokens per answer."
        f"{_faults_sentence(config)}</p><table><tr><th>Method</th><th>Path</th><th>What it does</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    return web.Response(text=page, content_type="text/html")


def _faults_sentence(config: BotConfig) -> str:
    """The docs page's sentence about injected faults (empty when none are configured)."""
    if not config.faults:
        return ""
    faults = ", ".join(f"{fault.kind}:{fault.rate:g}@{','.join(fault.groups)}" for fault in config.faults)
    return f" Injected faults: <code>{html.escape(faults)}</code> (slow-headers wait {config.fault_delay:g} s)."


def endpoint_summaries(app: web.Application) -> list[tuple[str, str, str]]:
    """(method, path, first docstring line of the handler) for every route, so /docs never goes stale."""
    summaries = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        doc = (route.handler.__doc__ or "").strip()
        summaries.append((route.method, route.resource.canonical, doc.splitlines()[0] if doc else ""))
    return summaries


def setup(app: web.Application) -> None:
    """Register the meta routes."""
    app.router.add_get("/healthcheck", healthcheck)
    app.router.add_get("/docs", docs)
    app.router.add_get("/stats", stats)
