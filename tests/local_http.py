"""A real HTTP server on 127.0.0.1 for the tests that talk to one (webhooks, provider.web, a
Prometheus answering garbage): aiohttp on a free port, stopped when the block ends."""

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve `app`; yields its base URL, http://127.0.0.1:PORT."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()
