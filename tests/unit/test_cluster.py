"""Evictions of drifted pods: retried while the API server cannot take them, never when it refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import aiohttp.web
import pytest

from flinkmem.runtime import cluster as cluster_module
from flinkmem.runtime.cluster import Cluster
from flinkmem.runtime.credentials import Credentials
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.settings import Settings


@contextlib.asynccontextmanager
async def _stand_in(
    path: str, handler: Callable[[aiohttp.web.Request], Awaitable[aiohttp.web.StreamResponse]]
) -> AsyncIterator[Cluster]:
    """A `Cluster` talking to a stand-in API server on loopback that answers POSTs to `path` with `handler`."""
    app = aiohttp.web.Application()
    app.add_routes([aiohttp.web.post(path, handler)])
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    subject = Cluster(
        Settings(self_signed_dir=None), Metrics(), Credentials(f"http://127.0.0.1:{runner.addresses[0][1]}")
    )
    try:
        yield subject
    finally:
        await subject.close()
        await runner.cleanup()


async def _evict_against(answers: Iterable[int | None]) -> tuple[bool, int]:
    """Evicts a pod from a stand-in API server answering with ``answers`` in turn (None: drop the
    connection); returns the result and how many requests reached the server."""
    script = list(answers)
    seen = 0

    async def eviction(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        nonlocal seen
        seen += 1
        status = script.pop(0)
        if status is None:
            assert request.transport is not None
            request.transport.close()
            return aiohttp.web.Response()
        return aiohttp.web.json_response({"kind": "Status", "code": status}, status=status)

    async with _stand_in("/api/v1/namespaces/{ns}/pods/{name}/eviction", eviction) as subject:
        return await subject.evict_pod("jobs", "jm-0"), seen


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float, *args: Any) -> None:
        if delay:  # aiohttp yields with sleep(0) itself; only the back-off waits
            delays.append(delay)
        await real_sleep(0)

    # asyncio.sleep is one function for every module; it only ever waits here for the back-off.
    monkeypatch.setattr("flinkmem.runtime.cluster.asyncio.sleep", record)
    return delays


def test_an_api_server_that_is_restarting_is_asked_again_until_it_takes_the_eviction(no_waiting: list[float]) -> None:
    assert asyncio.run(_evict_against([None, 503, 429, 201])) == (True, 4)
    assert no_waiting == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("status", [403, 404, 422])
def test_a_refusal_or_a_gone_pod_is_final(status: int, no_waiting: list[float]) -> None:
    assert asyncio.run(_evict_against([status])) == (False, 1)
    assert no_waiting == []


def test_retries_end_after_their_time(monkeypatch: pytest.MonkeyPatch, no_waiting: list[float]) -> None:
    monkeypatch.setattr(cluster_module, "EVICTION_RETRY_SECONDS", 0.0)
    assert asyncio.run(_evict_against([503, 201])) == (False, 1)


async def _post_event_against(status: int) -> list[tuple[str | None, dict[str, Any]]]:
    """Posts one Event to a stand-in API server answering `status`; what it received."""
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def events(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        received.append((request.content_type, await request.json()))
        return aiohttp.web.json_response({"kind": "Status", "message": "events are forbidden here"}, status=status)

    target = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "jm-0", "namespace": "jobs", "uid": "u-1"}}
    async with _stand_in("/api/v1/namespaces/{ns}/events", events) as subject:
        await subject.post_event(target, "Warning", "MemoryDrift", "needs 1600 MiB")
    return received


def test_an_event_is_posted_as_json_and_a_refusal_is_logged_with_the_servers_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    [(content_type, event)] = asyncio.run(_post_event_against(201))
    assert content_type == "application/json"
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "jm-0",
        "namespace": "jobs",
        "uid": "u-1",
    }
    assert (event["type"], event["reason"], event["message"]) == ("Warning", "MemoryDrift", "needs 1600 MiB")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]

    asyncio.run(_post_event_against(403))
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "MemoryDrift" in warning and "HTTP 403" in warning and "events are forbidden here" in warning
