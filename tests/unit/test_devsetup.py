"""The development set-up (`--install-crd`, `--register-url`) as plain REST calls, against a stand-in API server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp.web
import pytest

from flinkmem.conventions import WEBHOOK_CONFIG_NAME
from flinkmem.runtime.cluster import Cluster
from flinkmem.runtime.credentials import Credentials
from flinkmem.runtime.devsetup import (
    CRD_PATH,
    MUTATING_PATH,
    VALIDATING_PATH,
    DevSetupError,
    bundled_crd,
    install_crd_if_absent,
    register_webhooks,
)
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.settings import Settings


class Store:
    """A stand-in for the API server's storage of cluster-scoped objects, with resourceVersions."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.version = 0
        self.refuse: int | None = None

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        path, method = request.path, request.method
        self.calls.append((method, path))
        if self.refuse is not None:
            return aiohttp.web.json_response({"kind": "Status", "message": "no"}, status=self.refuse)
        if method == "GET":
            found = self.objects.get(path)
            return aiohttp.web.json_response(found or {"kind": "Status"}, status=200 if found else 404)
        body = json.loads(await request.read())
        self.version += 1
        if method == "POST":
            key = f"{path}/{body['metadata']['name']}"
            if key in self.objects:
                return aiohttp.web.json_response({"kind": "Status"}, status=409)
            body["metadata"]["resourceVersion"] = str(self.version)
            self.objects[key] = body
            return aiohttp.web.json_response(body, status=201)
        assert method == "PUT"
        if body["metadata"].get("resourceVersion") != self.objects[path]["metadata"]["resourceVersion"]:
            return aiohttp.web.json_response({"kind": "Status"}, status=409)
        body["metadata"]["resourceVersion"] = str(self.version)
        self.objects[path] = body
        return aiohttp.web.json_response(body)


async def _with_store(store: Store, work: Any) -> Any:
    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", store.handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
    cluster = Cluster(
        Settings(self_signed_dir=None), Metrics(), Credentials(f"http://127.0.0.1:{runner.addresses[0][1]}")
    )
    try:
        return await work(cluster)
    finally:
        await cluster.close()
        await runner.cleanup()


def test_the_crd_is_created_once() -> None:
    store = Store()

    async def twice(cluster: Cluster) -> tuple[bool, bool]:
        return await install_crd_if_absent(cluster), await install_crd_if_absent(cluster)

    assert asyncio.run(_with_store(store, twice)) == (True, False)
    name = bundled_crd()["metadata"]["name"]
    assert store.objects[f"{CRD_PATH}/{name}"]["spec"] == bundled_crd()["spec"]


def test_webhook_configurations_are_created_then_replaced(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"PEM")
    store = Store()
    settings = Settings(self_signed_dir=None)

    async def register(cluster: Cluster) -> None:
        await register_webhooks(cluster, settings, "https://127.0.0.1:9443", ca)
        await register_webhooks(cluster, settings, "https://127.0.0.1:9444", ca)

    asyncio.run(_with_store(store, register))
    for collection in (VALIDATING_PATH, MUTATING_PATH):
        stored = store.objects[f"{collection}/{WEBHOOK_CONFIG_NAME}"]
        assert all(w["clientConfig"]["url"].startswith("https://127.0.0.1:9444/") for w in stored["webhooks"])
    assert ("PUT", f"{VALIDATING_PATH}/{WEBHOOK_CONFIG_NAME}") in store.calls


def test_a_refusal_is_an_error_that_says_what_failed() -> None:
    store = Store()
    store.refuse = 403
    with pytest.raises(DevSetupError, match=r"reading the CRD .*HTTP 403 no"):
        asyncio.run(_with_store(store, install_crd_if_absent))
