from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flinkmem.certs import ensure_self_signed
from flinkmem.metrics import Metrics
from flinkmem.settings import MUTATE_ID, VALIDATE_ID
from flinkmem.webserver import HealthServer, ReviewError, WebhookServer, check_review, metadata_problem


def review(**request: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "uid": "u-1",
        "operation": "CREATE",
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "userInfo": {"username": "tester"},
        "object": {"metadata": {"name": "x"}},
    }
    base.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": base}


def test_check_review_accepts_a_real_shape_and_fills_namespace() -> None:
    data = check_review(review(namespace="jobs"))
    assert data["request"]["object"]["metadata"]["namespace"] == "jobs"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "JSON object"),
        ({"kind": "AdmissionReview"}, "admission.k8s.io/v1"),
        (review(uid=5), "uid"),
        (review(operation="PATCH"), "operation"),
        (review(resource="pods"), "resource"),
        (review(userInfo=None), "userInfo"),
        (review(object=[1]), "object"),
        (review(object=None), "object or request.oldObject"),
        (review(dryRun="yes"), "dryRun"),
        (review(namespace=7), "namespace"),
    ],
)
def test_check_review_rejects_malformed(body: Any, fragment: str) -> None:
    with pytest.raises(ReviewError, match=fragment):
        check_review(body)


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ({"metadata": None}, "object.metadata must be an object"),
        ({"metadata": "x"}, "object.metadata must be an object"),
        ({"metadata": {"labels": None}}, "object.metadata.labels must be a map of strings"),
        ({"metadata": {"labels": ["a"]}}, "object.metadata.labels must be a map of strings"),
        ({"metadata": {"labels": {"app": 3}}}, "object.metadata.labels['app'] must be a string"),
        ({"metadata": {"annotations": "x"}}, "object.metadata.annotations must be a map of strings"),
        ({"metadata": {"name": 5}}, "object.metadata.name must be a string"),
        ({"metadata": {"namespace": {}}}, "object.metadata.namespace must be a string"),
        ({"spec": None}, None),
        ({"metadata": {"name": "x", "labels": {"a": "b"}}}, None),
    ],
)
def test_metadata_problem_names_the_field(obj: dict[str, Any], problem: str | None) -> None:
    assert metadata_problem(obj, "object") == problem


def test_mistyped_metadata_is_answered_without_the_handlers(tmp_path: Path) -> None:
    """A null `metadata` once reached kopf and gave HTTP 500 from every webhook."""

    async def scenario() -> None:
        async for served in _serve(tmp_path, _boom):
            for bad in ({"metadata": None}, {"metadata": {"labels": ["x"]}}):
                status, body = await served.post(MUTATE_ID, json.dumps(review(object=bad)).encode())
                assert status == 200 and body["response"]["allowed"] is True
                assert "object.metadata" in body["response"]["warnings"][0]
                status, body = await served.post(VALIDATE_ID, json.dumps(review(object=bad)).encode())
                assert status == 200 and body["response"]["allowed"] is False
                assert body["response"]["status"]["code"] == 422
                assert "object.metadata" in body["response"]["status"]["message"]
            old_bad = review(operation="UPDATE", oldObject={"metadata": None})
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
            status, body = await served.post(VALIDATE_ID, json.dumps(review()).encode())
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
            status, body = await served.post(VALIDATE_ID, json.dumps(review()).encode())
            assert status == 200 and body["response"]["allowed"] is False
            assert body["response"]["status"]["code"] == 500

    asyncio.run(scenario())


def test_certificate_reload_keeps_serving(tmp_path: Path) -> None:
    async def scenario() -> None:
        async for served in _serve(tmp_path, _echo):
            assert (await served.post(VALIDATE_ID, json.dumps(review()).encode()))[0] == 200
            old_ca = served.ca.read_bytes()
            for name in ("ca.crt", "tls.crt", "tls.key"):
                (tmp_path / name).unlink()
            ensure_self_signed(tmp_path, ["127.0.0.1", "localhost"])
            assert served.ca.read_bytes() != old_ca
            await asyncio.sleep(0.5)
            # A client that trusts only the new CA can connect: the new certificate is being served.
            assert (await served.post(VALIDATE_ID, json.dumps(review()).encode()))[0] == 200

    asyncio.run(scenario())


def test_health_server_readiness_follows_the_webhook(tmp_path: Path) -> None:
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
