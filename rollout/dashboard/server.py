"""The dashboard's web server (aiohttp): the page and its assets (static/, package data), the
JSON it reads, the server-sent events that keep it live, and the actions' POSTs.

Security: it listens on 127.0.0.1 unless told otherwise; on a loopback address it answers only
requests whose Host names that address (a DNS-rebinding page cannot reach it); every action is a
POST carrying the CSRF token the page got from /api/config (a same-origin read); `read_only`
refuses every POST. Every Kubernetes request is made with the user's credentials: the dashboard
has no authority of its own."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web

from rollout.cli.session import Session
from rollout.dashboard import actions, pages
from rollout.dashboard.watching import Watches

DEBOUNCE_SECONDS = 0.1  # the list's: changes that come together are sent as one update
PAGE_DEBOUNCE_SECONDS = 0.25  # a Rollout's page (read from the API server each time)
KEEPALIVE_SECONDS = 15.0
ASSETS = {"app.js": "text/javascript", "app.css": "text/css", "index.html": "text/html"}
CSRF_HEADER = "X-CSRF-Token"


@dataclass
class Dashboard:
    session: Session  # the user's API client (its namespace is not used: pages name theirs)
    watches: Watches
    read_only: bool = False
    scope: str = "every namespace"
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    allowed_hosts: frozenset[str] | None = None  # set when serving; None: any Host (not loopback)


DASHBOARD = web.AppKey("dashboard", Dashboard)


def _asset(name: str) -> bytes:
    return resources.files("rollout.dashboard").joinpath("static", name).read_bytes()


def loopback_hosts(address: str, port: int) -> frozenset[str] | None:
    """The Host headers a loopback-bound dashboard answers; None when not bound to loopback."""
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = address == "localhost"
    if not loopback:
        return None
    names = {address, "localhost", "127.0.0.1", "[::1]"}
    return frozenset(f"{n}:{port}" for n in names)


@web.middleware
async def _guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    board = request.app[DASHBOARD]
    if board.allowed_hosts is not None and request.host not in board.allowed_hosts:
        return web.Response(status=421, text=f"this dashboard answers {sorted(board.allowed_hosts)[0]} only")
    response = await handler(request)
    # The page loads nothing from elsewhere and may not be framed (no clickjacking of its buttons).
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def _index(request: web.Request) -> web.Response:
    return web.Response(body=_asset("index.html"), content_type="text/html", charset="utf-8")


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.Response(body=_asset(name), content_type=ASSETS[name], charset="utf-8")


async def _no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def _config(request: web.Request) -> web.Response:
    board = request.app[DASHBOARD]
    return web.json_response(
        {"csrfToken": board.csrf_token, "readOnly": board.read_only, "scope": board.scope}
    )


async def _list(request: web.Request) -> web.Response:
    return web.json_response(pages.listing(request.app[DASHBOARD].watches))


async def _one(request: web.Request) -> web.Response:
    board = request.app[DASHBOARD]
    ns, name = request.match_info["namespace"], request.match_info["name"]
    return web.json_response(await pages.rollout_page(board.session, board.watches, ns, name))


async def _updates(
    board: Dashboard, build: Callable[[], Awaitable[dict[str, Any]]], about: tuple[str, str] | None
) -> AsyncIterator[dict[str, Any] | None]:
    """Each new version of a page after a watch event that concerns it (`about`: one Rollout's
    page; None: the list); None when nothing new came for a while (a keep-alive is due)."""
    last = None
    seen = -1
    while True:
        if about is None or seen < 0 or board.watches.concerns(seen, *about):
            seen = board.watches.generation
            payload = await build()
            text = json.dumps(payload, sort_keys=True)
            if text != last:
                last = text
                yield payload
        else:
            seen = board.watches.generation
        if not await board.watches.changed(seen, KEEPALIVE_SECONDS):
            yield None
        # Changes that come together are sent as one update; a Rollout's page costs API reads.
        await asyncio.sleep(DEBOUNCE_SECONDS if about is None else PAGE_DEBOUNCE_SECONDS)


async def _stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the list (no `name`) or one Rollout's page, each time it changes."""
    board = request.app[DASHBOARD]
    ns, name = request.query.get("namespace"), request.query.get("name")

    async def build() -> dict[str, Any]:
        if ns and name:
            return await pages.rollout_page(board.session, board.watches, ns, name)
        return pages.listing(board.watches)

    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        async for payload in _updates(board, build, (ns, name) if ns and name else None):
            chunk = ": keep-alive\n\n" if payload is None else f"data: {json.dumps(payload)}\n\n"
            await response.write(chunk.encode())
    return response


async def _action(request: web.Request) -> web.Response:
    board = request.app[DASHBOARD]
    if board.read_only:
        return web.json_response(
            {"ok": False, "message": "this dashboard is read-only (--read-only): no action is taken"},
            status=403,
        )
    token = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(token.encode(), board.csrf_token.encode()):
        return web.json_response(
            {"ok": False, "message": "missing or wrong CSRF token: reload the page"}, status=403
        )
    ns, name, action = (request.match_info[k] for k in ("namespace", "name", "action"))
    outcome = await actions.run(board.session.kube, ns, name, action)
    return web.json_response({"ok": outcome.ok, "message": outcome.message}, status=outcome.status)


def make_app(board: Dashboard) -> web.Application:
    app = web.Application(middlewares=[_guard])
    app[DASHBOARD] = board
    app.router.add_get("/", _index)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/favicon.ico", _no_icon)
    app.router.add_get("/api/config", _config)
    app.router.add_get("/api/rollouts", _list)
    app.router.add_get("/api/rollouts/{namespace}/{name}", _one)
    app.router.add_get("/api/stream", _stream)
    app.router.add_post("/api/rollouts/{namespace}/{name}/{action}", _action)
    return app


@contextlib.asynccontextmanager
async def serving(board: Dashboard, address: str, port: int) -> AsyncIterator[str]:
    """Watch and serve until the block ends; yields the dashboard's URL (port 0: any free one)."""
    board.watches.start()
    runner = web.AppRunner(make_app(board), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, address, port)
        await site.start()
        bound = runner.addresses[0][1]
        board.allowed_hosts = loopback_hosts(address, bound)
        host = f"[{address}]" if ":" in address else address
        yield f"http://{host}:{bound}/"
    finally:
        await runner.cleanup()
        await board.watches.stop()
