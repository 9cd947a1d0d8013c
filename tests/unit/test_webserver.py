from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from flinkmem.conventions import MUTATE_ID, VALIDATE_ID
from flinkmem.runtime.certs import ensure_self_signed
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.webserver import WebhookServer
from tests.unit.admission_harness import FD, PODS, Harness


def review(**request: Any) -> dict[str, Any]:
    """A review for `path`'s own resource (FlinkDeployments for the validating webhook, pods otherwise)."""
    base: dict[str, Any] = {
        "uid": "u-1",
        "operation": "CREATE",
        "resource": PODS,
        "userInfo": {"username": "tester"},
        "object": {"metadata": {"name": "x"}},
    }
    base.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": base}


def fd_review(**request: Any) -> dict[str, Any]:
    return review(resource=FD, **request)


def test_mistyped_metadata_is_answered_without_the_handlers(tmp_path: Path) -> None:
    """A null `metadata` once reached kopf and gave HTTP 500 from every webhook."""

    async def scenario() -> None:
        async for served in _serve(tmp_path, _boom):
            for bad in ({"metadata": None}, {"metadata": {"labels": ["x"]}}):
                status, body = await served.post(MUTATE_ID, json.dumps(review(object=bad)).encode())
                assert status == 200 and body["response"]["allowed"] is True
                assert "object.metadata" in body["response"]["warnings"][0]
                status, body = await served.post(VALIDATE_ID, json.dumps(fd_review(object=bad)).encode())
                assert status == 200 and body["response"]["allowed"] is False
                assert body["response"]["status"]["code"] == 422
                assert "object.metadata" in body["response"]["status"]["message"]
            old_bad = fd_review(operation="UPDATE", oldObject={"metadata": None})
            status, body = await served.post(VALIDATE_ID, json.dumps(old_bad).encode())
            assert status == 200 and "oldObject.metadata" in body["response"]["status"]["message"]

    asyncio.run(scenario())


class _Served:
    def __init__(self, server: WebhookServer, session: aiohttp.ClientSession, ca: Path) -> None:
        self.server = server
        self.session = session
        self.ca = ca

    async def post(self, path: str, body: bytes) -> tuple[int, Any]:
        assert self.server.bound_port is not None
        context = ssl.create_default_context(cafile=str(self.ca))
        url = f"https://127.0.0.1:{self.server.bound_port}/{path}"
        async with self.session.post(url, data=body, ssl=context) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except json.JSONDecodeError:
                return response.status, text


async def _serve(tmp_path: Path, fn: Any, max_bytes: int = 64 * 1024) -> AsyncIterator[_Served]:
    paths = ensure_self_signed(tmp_path, ["127.0.0.1", "localhost"])
    server = WebhookServer(
        addr="127.0.0.1",
        port=0,
        certfile=paths.cert,
        keyfile=paths.key,
        cafile=paths.ca,
        metrics=Metrics(),
        service=Harness().service,
        engine="kopf",  # `fn` below stands for kopf's admission engine
        max_request_bytes=max_bytes,
        reload_seconds=0.1,
    )
    generator = server(fn)
    config = await generator.__anext__()
    assert config["url"].startswith("https://")
    task = asyncio.ensure_future(generator.__anext__())
    async with aiohttp.ClientSession() as session:
        try:
            yield _Served(server, session, paths.ca)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await generator.aclose()


async def _echo(data: dict[str, Any], **_: Any) -> dict[str, Any]:
    uid = data["request"]["uid"]
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": uid, "allowed": True}}


async def _boom(data: dict[str, Any], **_: Any) -> dict[str, Any]:
    raise RuntimeError("handler bug")


def test_transport_answers_and_rejects(tmp_path: Path) -> None:
    async def scenario() -> None:
        async for served in _serve(tmp_path, _echo):
            status, body = await served.post(VALIDATE_ID, json.dumps(fd_review()).encode())
            assert status == 200 and body["response"] == {"uid": "u-1", "allowed": True}
            assert (await served.post(VALIDATE_ID, b"{not json"))[0] == 400
            assert (await served.post(VALIDATE_ID, b"\xff\xfe"))[0] == 400
            assert (await served.post(VALIDATE_ID, b"[" * 100_000))[0] in (400, 413)
            assert (await served.post(VALIDATE_ID, b"1" * 5000))[0] == 400
            assert (await served.post(VALIDATE_ID, b" " * (70 * 1024)))[0] == 413
            text = served.server.metrics.exposition().decode()
            assert (
                'flinkmem_admission_requests_total{decision="allowed",webhook="validate-flinkdeployment"} 1.0' in text
            )
            assert 'decision="bad-request"' in text

    asyncio.run(scenario())


def test_handler_failure_fails_open_for_pods_and_closed_for_deployments(tmp_path: Path) -> None:
    async def scenario() -> None:
        async for served in _serve(tmp_path, _boom):
            status, body = await served.post(MUTATE_ID, json.dumps(review()).encode())
            assert status == 200 and body["response"]["allowed"] is True
            assert body["response"]["warnings"]
            status, body = await served.post(VALIDATE_ID, json.dumps(fd_review()).encode())
            assert status == 200 and body["response"]["allowed"] is False
            assert body["response"]["status"]["code"] == 500

    asyncio.run(scenario())


def test_certificate_reload_keeps_serving(tmp_path: Path) -> None:
    async def scenario() -> None:
        async for served in _serve(tmp_path, _echo):
            assert (await served.post(VALIDATE_ID, json.dumps(fd_review()).encode()))[0] == 200
            old_ca = served.ca.read_bytes()
            for name in ("ca.crt", "tls.crt", "tls.key"):
                (tmp_path / name).unlink()
            ensure_self_signed(tmp_path, ["127.0.0.1", "localhost"])
            assert served.ca.read_bytes() != old_ca
            await asyncio.sleep(0.5)
            # A client that trusts only the new CA can connect: the new certificate is being served.
            assert (await served.post(VALIDATE_ID, json.dumps(fd_review()).encode()))[0] == 200

    asyncio.run(scenario())
