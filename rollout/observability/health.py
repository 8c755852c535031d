"""The controller process's HTTP endpoints: `/healthz` (liveness), `/readyz` (readiness) and
`/metrics` (Prometheus text format), on one port that the chart's probes and Service use.

Liveness answers from the event loop itself, so a blocked loop or a dead leader-election thread
fails it; readiness is whatever `ready` says (the process's main module decides: a leader whose
watches have started, or a follower that can read the Lease and is ready to take over)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rollout.observability.metrics import REGISTRY


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        alive: Callable[[], bool] = lambda: True,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.host, self.port = host, port
        self.alive, self.ready = alive, ready
        self._runner: aiohttp.web.AppRunner | None = None

    @staticmethod
    def _answer(ok: bool, what: str) -> aiohttp.web.Response:
        return aiohttp.web.Response(status=200 if ok else 503, text=f"{what}\n" if ok else f"not {what}\n")

    async def _healthz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        return self._answer(self.alive(), "alive")

    async def _readyz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        return self._answer(self.ready(), "ready")

    async def _metrics(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        body = generate_latest(REGISTRY)
        return aiohttp.web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        app = aiohttp.web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = aiohttp.web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await aiohttp.web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
