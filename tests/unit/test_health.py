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


def test_readiness_and_the_ready_gauge_turn_false_when_stopping() -> None:
    async def scenario() -> None:
        ready = asyncio.Event()
        metrics = Metrics()
        health = HealthServer("127.0.0.1", 0, metrics, ready)
        await health.start()
        runner = health._runner
        assert runner is not None
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"

        def gauge() -> float | None:
            value: float | None = metrics.registry.get_sample_value("flinkmem_ready")
            return value

        try:
            async with aiohttp.ClientSession() as session:
                assert gauge() == 0.0
                ready.set()
                assert gauge() == 1.0
                health.mark_stopping()
                async with session.get(f"{url}/readyz") as r:
                    assert r.status == 503 and "shutting down" in await r.text()
                async with session.get(f"{url}/metrics") as r:
                    assert "flinkmem_ready 0.0" in await r.text()
                async with session.get(f"{url}/healthz") as r:
                    assert r.status == 200, "stopping is not dying: liveness stays ok"
        finally:
            await health.stop()

    asyncio.run(scenario())
