"""demobot's self-description routes: health check, endpoint documentation, and live counters."""

from __future__ import annotations

import html

from aiohttp import web

from demobot.state import STATE


async def healthcheck(request: web.Request) -> web.Response:
    """Liveness probe: always {"status": "ok"} while the server runs."""
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
        "</p><table><tr><th>Method</th><th>Path</th><th>What it does</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    return web.Response(text=page, content_type="text/html")


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
