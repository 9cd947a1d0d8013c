"""The plain HTTP server for liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp.web

from flinkmem.runtime.metrics import Metrics

__all__ = ["HealthServer"]


class HealthServer:
    """Liveness, readiness (only once the webhook port serves, and no longer once stopping) and
    Prometheus metrics over HTTP."""

    def __init__(
        self,
        addr: str,
        port: int,
        metrics: Metrics,
        ready: asyncio.Event,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self.addr = addr
        self.port = port
        self.metrics = metrics
        self.ready = ready
        self.alive = alive
        self.stopping = False
        self._runner: aiohttp.web.AppRunner | None = None
        metrics.follow_readiness(self.is_ready)

    def is_ready(self) -> bool:
        return self.ready.is_set() and not self.stopping

    def mark_stopping(self) -> None:
        """Not ready from now on: the replica is shutting down (SIGTERM)."""
        self.stopping = True

    async def start(self) -> None:
        app = aiohttp.web.Application()
        app.add_routes(
            [
                aiohttp.web.get("/healthz", self._healthz),
                aiohttp.web.get("/readyz", self._readyz),
                aiohttp.web.get("/metrics", self._metrics),
            ]
        )
        self._runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await aiohttp.web.TCPSite(self._runner, self.addr, self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _healthz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        if not self.alive():
            return aiohttp.web.Response(status=503, text="the controller process is not running\n")
        return aiohttp.web.Response(text="ok\n")

    async def _readyz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        if self.stopping:
            return aiohttp.web.Response(status=503, text="shutting down\n")
        if self.ready.is_set():
            return aiohttp.web.Response(text="ok\n")
        return aiohttp.web.Response(status=503, text="webhook port not serving yet\n")

    async def _metrics(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(body=self.metrics.exposition(), content_type="text/plain", charset="utf-8")
