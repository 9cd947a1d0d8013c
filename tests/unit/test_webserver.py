from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flinkmem.conventions import MUTATE_ID, VALIDATE_ID
from flinkmem.runtime.certs import ensure_self_signed
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.webserver import LARGE_REVIEW_BYTES, LARGE_REVIEWS_AT_ONCE, WebhookServer
from localplane.controlplane import create_pki, mint_client_cert
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

    async def post(
        self, path: str, body: bytes, client: tuple[Path, Path] | None = None, tls: str | None = None
    ) -> tuple[int, Any]:
        """POSTs `body`, optionally with a client certificate (cert, key) and at most TLS version `tls`."""
        assert self.server.bound_port is not None
        context = ssl.create_default_context(cafile=str(self.ca))
        if client is not None:
            context.load_cert_chain(*client)
        if tls == "1.2":
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        url = f"https://127.0.0.1:{self.server.bound_port}/{path}"
        async with self.session.post(url, data=body, ssl=context) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except json.JSONDecodeError:
                return response.status, text


async def _serve(tmp_path: Path, fn: Any, max_bytes: int = 64 * 1024, **tls: Any) -> AsyncIterator[_Served]:
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
        **tls,
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


def _client_pki(tmp_path: Path) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    """A client CA and certificates it signed (the API server's, another one), plus one from another CA."""
    pki = create_pki(tmp_path / "clients")
    stranger = create_pki(tmp_path / "stranger")
    out: dict[str, tuple[Path, Path]] = {}
    for label, pki_dir, name in (
        ("apiserver", pki.dir, "kube-apiserver-webhook-client"),
        ("tenant", pki.dir, "tenant"),
        ("stranger", stranger.dir, "kube-apiserver-webhook-client"),
    ):
        cert, key = mint_client_cert(pki_dir, name)
        (tmp_path / f"{label}.crt").write_bytes(cert)
        (tmp_path / f"{label}.key").write_bytes(key)
        out[label] = (tmp_path / f"{label}.crt", tmp_path / f"{label}.key")
    return pki.ca_cert, out


def test_with_a_client_ca_only_the_api_servers_certificate_is_answered(tmp_path: Path) -> None:
    ca, clients = _client_pki(tmp_path)

    async def scenario() -> None:
        names = ("kube-apiserver-webhook-client",)
        async for served in _serve(tmp_path / "server", _echo, client_ca_file=ca, client_names=names):
            body = json.dumps(fd_review()).encode()
            status, answer = await served.post(VALIDATE_ID, body, clients["apiserver"])
            assert status == 200 and answer["response"]["allowed"] is True
            # Signed by the CA but not the API server's name: refused before the review is read.
            status, answer = await served.post(VALIDATE_ID, body, clients["tenant"])
            assert status == 403 and "client certificate" in answer["error"]
            # No certificate, or one from another CA: the handshake itself fails.
            for client in (None, clients["stranger"]):
                with pytest.raises(aiohttp.ClientError):
                    await served.post(VALIDATE_ID, body, client)
            text = served.server.metrics.exposition().decode()
            assert 'decision="forbidden"' in text

    asyncio.run(scenario())


def test_tls_1_3_is_the_default_and_1_2_can_be_allowed(tmp_path: Path) -> None:
    async def scenario() -> None:
        body = json.dumps(fd_review()).encode()
        async for served in _serve(tmp_path / "default", _echo):
            with pytest.raises(aiohttp.ClientError):
                await served.post(VALIDATE_ID, body, tls="1.2")
            assert (await served.post(VALIDATE_ID, body))[0] == 200
        async for served in _serve(tmp_path / "old", _echo, tls_min_version="1.2"):
            assert (await served.post(VALIDATE_ID, body, tls="1.2"))[0] == 200

    asyncio.run(scenario())


def test_large_reviews_take_turns_and_never_hold_up_ordinary_ones(tmp_path: Path) -> None:
    inside, most = 0, 0
    release = asyncio.Event()

    async def engine(data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        nonlocal inside, most
        if "pad" in data["request"]["object"].get("spec", {}):
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1
        return await _echo(data, **kwargs)

    large = json.dumps(fd_review(object={"metadata": {"name": "x"}, "spec": {"pad": "x" * LARGE_REVIEW_BYTES}}))
    small = json.dumps(fd_review()).encode()

    async def scenario() -> None:
        async for served in _serve(tmp_path, engine, max_bytes=8 * 1024 * 1024):
            waiting = [asyncio.ensure_future(served.post(VALIDATE_ID, large.encode())) for _ in range(6)]
            async with asyncio.timeout(60):  # only a hang misses it
                while inside < LARGE_REVIEWS_AT_ONCE:
                    await asyncio.sleep(0.01)
                # Six large reviews sent, two being decided: an ordinary one is answered at once.
                status, body = await served.post(VALIDATE_ID, small)
                assert status == 200 and body["response"]["allowed"] is True
                assert inside == LARGE_REVIEWS_AT_ONCE and not any(task.done() for task in waiting)
                release.set()
                answers = await asyncio.gather(*waiting)
            assert [status for status, _ in answers] == [200] * 6
            assert most == LARGE_REVIEWS_AT_ONCE

    asyncio.run(scenario())


def test_stopping_answers_the_reviews_in_flight_and_closes_the_port(tmp_path: Path) -> None:
    """A graceful stop: a review that is being answered when the stop begins still gets its answer;
    after it, the port takes no new connection."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(data: dict[str, Any], **_: Any) -> dict[str, Any]:
        arrived.set()
        await release.wait()
        return await _echo(data)

    async def scenario() -> None:
        async for served in _serve(tmp_path, slow):
            in_flight = asyncio.ensure_future(served.post(VALIDATE_ID, json.dumps(fd_review()).encode()))
            await asyncio.wait_for(arrived.wait(), 30)
            stopping = asyncio.ensure_future(served.server.stop())
            await asyncio.sleep(0.2)
            assert not stopping.done(), "the stop waits for the review in flight"
            assert not served.server.ready.is_set()
            release.set()
            status, body = await asyncio.wait_for(in_flight, 30)
            assert status == 200 and body["response"]["allowed"] is True
            assert await asyncio.wait_for(stopping, 30) == 1
            with pytest.raises(aiohttp.ClientConnectionError):
                await served.post(VALIDATE_ID, json.dumps(fd_review()).encode())

    asyncio.run(scenario())


def test_an_object_nested_too_deep_to_decode_is_refused_saying_so(tmp_path: Path) -> None:
    deep = json.dumps(fd_review(object={"metadata": {"name": "x"}, "spec": {"podTemplate": "DEEP"}}))
    body = deep.replace('"DEEP"', "[" * 5000 + "]" * 5000).encode()

    async def scenario() -> None:
        async for served in _serve(tmp_path, _echo, max_bytes=1024 * 1024):
            status, answer = await served.post(VALIDATE_ID, body)
            assert status == 200 and answer["response"]["uid"] == "u-1"
            assert answer["response"]["allowed"] is False and answer["response"]["status"]["code"] == 400
            assert "nests deeper than flinkmem reads" in answer["response"]["status"]["message"]
            # A pod is never refused for it (fail open), and a body without a uid is no review.
            status, answer = await served.post(MUTATE_ID, body)
            assert status == 200 and answer["response"]["allowed"] is True
            assert (await served.post(VALIDATE_ID, b'{"request": ' + b"[" * 5000 + b"]" * 5000 + b"}"))[0] == 400

    asyncio.run(scenario())


def test_the_certificate_expiry_is_exported_and_follows_a_reload(tmp_path: Path) -> None:
    from cryptography import x509

    def expiry(path: Path) -> float:
        return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc.timestamp()

    def exported(server: WebhookServer) -> float:
        value = server.metrics.registry.get_sample_value("flinkmem_serving_certificate_expiry_timestamp_seconds")
        assert value is not None
        return value

    async def scenario() -> None:
        async for served in _serve(tmp_path, _echo):
            assert exported(served.server) == expiry(tmp_path / "tls.crt")
            first = exported(served.server)
            for name in ("ca.crt", "tls.crt", "tls.key"):
                (tmp_path / name).unlink()
            await asyncio.sleep(1.1)  # a new certificate, a later expiry (whole seconds)
            ensure_self_signed(tmp_path, ["127.0.0.1", "localhost"])
            deadline = asyncio.get_running_loop().time() + 30
            while exported(served.server) == first and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
            assert exported(served.server) == expiry(tmp_path / "tls.crt") > first

    asyncio.run(scenario())
