"""The HTTPS server behind the admission webhooks, and the plain HTTP health/metrics server.

kopf turns AdmissionReviews into handler calls; this server owns the transport around it. It
bounds request sizes, answers malformed bodies with 400 instead of letting them reach kopf, turns
unexpected failures into a well-formed AdmissionReview (fail open for pods, closed for
FlinkDeployments), counts and times every request, and reloads its certificate files in place
when they change, without dropping the listener.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp.web
from kopf._core.engines import admission as kopf_admission

from flinkmem.metrics import Metrics
from flinkmem.settings import MUTATE_ID

__all__ = ["HealthServer", "ReviewError", "WebhookServer", "check_review", "metadata_problem"]

logger = logging.getLogger("flinkmem.webserver")

_OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")

DirectAnswer = Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any] | None]]


class ReviewError(ValueError):
    """The body is not an AdmissionReview request this webhook can answer (HTTP 400)."""


def check_review(data: object) -> dict[str, Any]:
    """Checks the fields kopf and our handlers read, so malformed input is a 400, never a crash."""
    if not isinstance(data, dict):
        raise ReviewError("the body must be a JSON object (an AdmissionReview)")
    if data.get("kind") != "AdmissionReview" or data.get("apiVersion") != "admission.k8s.io/v1":
        raise ReviewError("only admission.k8s.io/v1 AdmissionReview is accepted")
    request = data.get("request")
    if not isinstance(request, dict):
        raise ReviewError("request must be an object")
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        raise ReviewError("request.uid must be a non-empty string")
    if request.get("operation") not in _OPERATIONS:
        raise ReviewError("request.operation must be CREATE, UPDATE, DELETE or CONNECT")
    resource = request.get("resource")
    if not isinstance(resource, dict) or not all(isinstance(resource.get(k), str) for k in ("group", "version")):
        raise ReviewError("request.resource must name group, version and resource")
    if not isinstance(resource.get("resource"), str) or not resource["resource"]:
        raise ReviewError("request.resource.resource must be a non-empty string")
    for key in ("subResource", "namespace", "name"):
        if request.get(key) is not None and not isinstance(request[key], str):
            raise ReviewError(f"request.{key} must be a string")
    if not isinstance(request.get("userInfo"), dict):
        raise ReviewError("request.userInfo must be an object")
    for key in ("object", "oldObject"):
        value = request.get(key)
        if value is not None and not isinstance(value, dict):
            raise ReviewError(f"request.{key} must be an object or null")
    if request.get("object") is None and request.get("oldObject") is None:
        raise ReviewError("request.object or request.oldObject must be present")
    if request.get("dryRun") is not None and not isinstance(request["dryRun"], bool):
        raise ReviewError("request.dryRun must be a boolean")
    # Pods created through a namespaced URL may arrive without metadata.namespace; the request has it.
    obj = request.get("object")
    if isinstance(obj, dict) and isinstance(request.get("namespace"), str):
        metadata = obj.setdefault("metadata", {})
        if isinstance(metadata, dict) and not metadata.get("namespace"):
            metadata["namespace"] = request["namespace"]
    return data


_STRING_FIELDS = ("name", "namespace", "uid", "generateName")


def metadata_problem(obj: object, path: str) -> str | None:
    """What is wrong with an object's metadata for kopf and the handlers to read it, if anything.

    A well-formed AdmissionReview can still carry an object whose metadata is null or mistyped (the
    API server checks built-in kinds, but a custom resource's review is only JSON). kopf reads the
    metadata before any handler runs, so such a review is answered here, naming the field.
    """
    if not isinstance(obj, dict) or "metadata" not in obj:
        return None
    metadata = obj["metadata"]
    if not isinstance(metadata, dict):
        return f"{path}.metadata must be an object"
    for key in _STRING_FIELDS:
        if metadata.get(key) is not None and not isinstance(metadata[key], str):
            return f"{path}.metadata.{key} must be a string"
    for key in ("labels", "annotations"):
        if key not in metadata:
            continue
        values = metadata[key]
        if not isinstance(values, dict):
            return f"{path}.metadata.{key} must be a map of strings"
        for name, value in values.items():
            if not isinstance(value, str):
                return f"{path}.metadata.{key}[{name!r}] must be a string"
    return None


def _fallback_response(data: Mapping[str, Any], webhook: str, message: str, code: int = 500) -> dict[str, Any]:
    """An answer built without kopf, for input kopf cannot take or failures inside the handlers:
    pods fail open, CRs closed."""
    uid = data["request"]["uid"]
    if webhook == MUTATE_ID:
        response: dict[str, Any] = {
            "uid": uid,
            "allowed": True,
            "warnings": [f"flinkmem: pod left unchanged: {message}"],
        }
    else:
        prefix = "flinkmem failed" if code >= 500 else "flinkmem refused this object"
        response = {"uid": uid, "allowed": False, "status": {"code": code, "message": f"{prefix}: {message}"}}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"missing")
    return digest.hexdigest()


class WebhookServer:
    """A kopf admission server (`settings.admission.server`) over aiohttp with TLS from files."""

    def __init__(
        self,
        *,
        addr: str,
        port: int,
        certfile: Path,
        keyfile: Path,
        cafile: Path | None,
        metrics: Metrics,
        max_request_bytes: int,
        reload_seconds: float,
        advertised_url: str | None = None,
    ) -> None:
        self.addr = addr
        self.port = port
        self.certfile = certfile
        self.keyfile = keyfile
        self.cafile = cafile
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes
        self.reload_seconds = reload_seconds
        self.advertised_url = advertised_url or f"https://{addr}:{port}"
        self.ready = asyncio.Event()
        self.bound_port: int | None = None
        # Answers the hot webhooks without kopf's admission engine (reviews.DirectAdmission); None
        # for a review it leaves to kopf.
        self.direct: DirectAnswer | None = None

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certfile, self.keyfile)
        return context

    async def __call__(self, fn: Any) -> AsyncGenerator[dict[str, Any], None]:
        context = self._context()

        async def serve(request: aiohttp.web.Request) -> aiohttp.web.Response:
            return await self._serve(fn, request)

        app = aiohttp.web.Application(client_max_size=self.max_request_bytes)
        app.add_routes([aiohttp.web.post("/{id}", serve)])
        runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = aiohttp.web.TCPSite(runner, self.addr, self.port, ssl_context=context, reuse_address=True)
            await site.start()
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
            self.ready.set()
            logger.info("serving admission webhooks on https://%s:%s", self.addr, self.bound_port)
            config: dict[str, Any] = {"url": self.advertised_url}
            if self.cafile is not None:
                config["caBundle"] = base64.b64encode(self.cafile.read_bytes()).decode("ascii")
            yield config
            await self._reload_forever(context)
        finally:
            self.ready.clear()
            await runner.cleanup()

    async def _reload_forever(self, context: ssl.SSLContext) -> None:
        files = [self.certfile, self.keyfile]
        seen = _digest(files)
        while True:
            await asyncio.sleep(self.reload_seconds)
            current = _digest(files)
            if current == seen:
                continue
            try:
                # New handshakes use the reloaded pair; the listening socket stays up throughout.
                context.load_cert_chain(self.certfile, self.keyfile)
            except (OSError, ssl.SSLError) as exc:
                logger.warning("certificate files changed but cannot be loaded yet: %s", exc)
                continue
            seen = current
            logger.info("reloaded the serving certificate from %s", self.certfile)

    async def _serve(self, fn: Any, request: aiohttp.web.Request) -> aiohttp.web.Response:
        webhook = request.match_info.get("id", "")
        started = time.perf_counter()
        decision = "error"
        try:
            try:
                raw = await request.read()
                data = check_review(json.loads(raw.decode("utf-8")))
            except (ValueError, RecursionError) as exc:
                decision = "bad-request"
                return aiohttp.web.json_response({"error": f"not a usable AdmissionReview: {exc}"}, status=400)
            review = data["request"]
            problem = metadata_problem(review.get("object"), "object") or metadata_problem(
                review.get("oldObject"), "oldObject"
            )
            if problem is not None:
                response = _fallback_response(data, webhook, f"{problem}.", code=422)
                decision = "allowed" if response["response"]["allowed"] else "denied"
                return aiohttp.web.json_response(response)
            try:
                answer = await self.direct(webhook, data) if self.direct is not None else None
                if answer is None:
                    answer = await fn(
                        data,
                        webhook=webhook,
                        headers=dict(request.headers),
                        sslpeer=request.transport.get_extra_info("peercert") if request.transport else None,
                    )
                response = answer
            except kopf_admission.UnknownResourceError as exc:
                decision = "unknown-resource"
                return aiohttp.web.json_response({"error": str(exc)}, status=404)
            except kopf_admission.AmbiguousResourceError as exc:
                decision = "bad-request"
                return aiohttp.web.json_response({"error": str(exc)}, status=409)
            except kopf_admission.WebhookError as exc:
                decision = "bad-request"
                return aiohttp.web.json_response({"error": str(exc)}, status=400)
            except Exception as exc:  # an answer is owed for anything; failurePolicy must not decide
                logger.exception("admission handler failed")
                response = _fallback_response(data, webhook, type(exc).__name__)
            allowed = bool(response.get("response", {}).get("allowed"))
            decision = "allowed" if allowed else "denied"
            if allowed and response["response"].get("patch"):
                decision = "patched"
            return aiohttp.web.json_response(response)
        except aiohttp.web.HTTPException as exc:
            decision = "bad-request" if exc.status < 500 else "error"
            raise
        finally:
            self.metrics.admission_requests.labels(webhook or "-", decision).inc()
            self.metrics.admission_latency.labels(webhook or "-").observe(time.perf_counter() - started)


class HealthServer:
    """Liveness, readiness (only once the webhook port serves) and Prometheus metrics over HTTP."""

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
        self._runner: aiohttp.web.AppRunner | None = None

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
            await self._runner.cleanup()

    async def _healthz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        if not self.alive():
            return aiohttp.web.Response(status=503, text="the controller process is not running\n")
        return aiohttp.web.Response(text="ok\n")

    async def _readyz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        if self.ready.is_set():
            return aiohttp.web.Response(text="ok\n")
        return aiohttp.web.Response(status=503, text="webhook port not serving yet\n")

    async def _metrics(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(body=self.metrics.exposition(), content_type="text/plain", charset="utf-8")
