from __future__ import annotations

import asyncio

import aiohttp

from flinkmem.runtime.health import HealthServer
from flinkmem.runtime.metrics import Metrics


def test_health_server_readiness_follows_the_webhook() -> None:
    async def scenario() -> None:
        ready = asyncio.Event()
        health = HealthServer("127.0.0.1", 0, Metrics(), ready)
        await health.start()
        runner = health._runner
        assert runner is not None
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    assert r.status == 200
                async with session.get(f"http://127.0.0.1:{port}/readyz") as r:
                    assert r.status == 503
                ready.set()
                async with session.get(f"http://127.0.0.1:{port}/readyz") as r:
                    assert r.status == 200
                async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                    assert "flinkmem_admission_duration_seconds" in await r.text()
        finally:
            await health.stop()

    asyncio.run(scenario())
