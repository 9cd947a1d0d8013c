"""The HTTPS server behind the admission webhooks.

It owns the transport around the admission service: it bounds request sizes, answers malformed
bodies with 400 naming the field, hands each checked review to the service's screen and then to a
transport (the direct answer, or kopf's engine), counts and times every request, and reloads its
certificate files in place when they change, without dropping the listener.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Mapping
from pathlib import Path
from typing import Any, Protocol

from flinkmem.conventions import WEBHOOK_IDS
from flinkmem.runtime.admission.direct import DirectTransport, response_for
from flinkmem.runtime.admission.kopfpath import KopfTransport
from flinkmem.runtime.admission.review import AdmissionRequest, Response, Review, ReviewError, check_review
from flinkmem.runtime.admission.service import AdmissionService
from flinkmem.runtime.certs import expiry_timestamp
from flinkmem.runtime.http1 import HttpServer, Reply, json_reply
from flinkmem.runtime.metrics import Metrics

__all__ = ["Transport", "WebhookServer", "handle_review"]

logger = logging.getLogger("flinkmem.webserver")


class Transport(Protocol):
    def __call__(self, review: Review, request: AdmissionRequest) -> Awaitable[Response]: ...


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"missing")
    return digest.hexdigest()


_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def _certificate_names(peer: object) -> set[str]:
    """The common names and DNS names of a certificate as `SSLSocket.getpeercert()` gives it."""
    if not isinstance(peer, dict):
        return set()
    names = {value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"}
    names.update(value for kind, value in peer.get("subjectAltName", ()) if kind == "DNS")
    return names


# A review's body is read, decoded and decided on the one event loop, in CPU time and memory that grow
# with its size: a 3 MiB FlinkDeployment costs a few hundred milliseconds and tens of MiB of Python
# objects. Bodies over LARGE_REVIEW_BYTES wait for one of LARGE_REVIEWS_AT_ONCE
# turns before they are read, so a tenant sending many at once holds flinkmem's memory to a few of
# them, and never delays a review of ordinary size (a FlinkDeployment or pod is a few KiB) by more
# than the one large review being decided. Waiting bodies stay in the socket, unread.
LARGE_REVIEW_BYTES = 256 * 1024
LARGE_REVIEWS_AT_ONCE = 2


class WebhookServer:
    """A kopf admission server (`settings.admission.server`) over flinkmem's HTTP/1.1 server with TLS from files."""

    def __init__(
        self,
        *,
        addr: str,
        port: int,
        certfile: Path,
        keyfile: Path,
        cafile: Path | None,
        metrics: Metrics,
        service: AdmissionService,
        engine: str = "direct",
        max_request_bytes: int,
        reload_seconds: float,
        advertised_url: str | None = None,
        tls_min_version: str = "1.3",
        client_ca_file: Path | None = None,
        client_names: tuple[str, ...] = (),
        drain_seconds: float = 10.0,
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
        self.service = service
        self.engine = engine
        self.tls_min_version = tls_min_version
        self.client_ca_file = client_ca_file
        self.client_names = frozenset(client_names)
        self.drain_seconds = drain_seconds
        self.in_flight = 0
        self._http: HttpServer | None = None

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = _TLS_VERSIONS[self.tls_min_version]
        context.load_cert_chain(self.certfile, self.keyfile)
        self._loaded_certificate()
        if self.client_ca_file is not None:
            # Only the API server's webhook client certificate gets past the handshake.
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self.client_ca_file))
        return context

    def _loaded_certificate(self) -> None:
        expires = expiry_timestamp(self.certfile)
        if expires is not None:
            self.metrics.certificate_expiry.set(expires)

    def _client_refused(self, peer: object) -> str | None:
        """Why the caller's certificate is not one of the accepted names (the CA already checked it)."""
        names = _certificate_names(peer)
        if names & self.client_names:
            return None
        return "the client certificate is not one flinkmem answers (see --client-name)"

    async def __call__(self, fn: Any) -> AsyncGenerator[dict[str, Any], None]:
        """kopf's admission server protocol: serve until cancelled, calling `fn` for kopf's engine."""
        context = self._context()
        transport: Transport = DirectTransport(self.service) if self.engine == "direct" else KopfTransport(fn)

        async def serve(path: str, body: bytes, refused: str | None) -> Reply:
            return await self._serve(transport, path, body, refused)

        http = HttpServer(
            serve,
            max_body_bytes=self.max_request_bytes,
            large_body_bytes=LARGE_REVIEW_BYTES,
            large_at_once=LARGE_REVIEWS_AT_ONCE,
            peer_check=self._client_refused if self.client_names else None,
        )
        self._http = http
        try:
            self.bound_port = await http.start(self.addr, self.port, context)
            self.ready.set()
            logger.info("serving admission webhooks on https://%s:%s", self.addr, self.bound_port)
            config: dict[str, Any] = {"url": self.advertised_url}
            if self.cafile is not None:
                config["caBundle"] = base64.b64encode(self.cafile.read_bytes()).decode("ascii")
            yield config
            await self._reload_forever(context)
        finally:
            await self.stop()

    async def stop(self) -> int:
        """Closes the port, closes idle connections and waits (at most `drain_seconds`) for the reviews
        in flight to be answered; how many were in flight when it began."""
        self.ready.clear()
        http, self._http = self._http, None
        in_flight = self.in_flight
        if http is not None:
            await http.stop(self.drain_seconds)
        return in_flight

    async def _reload_forever(self, context: ssl.SSLContext) -> None:
        files = [self.certfile, self.keyfile, *([self.client_ca_file] if self.client_ca_file else [])]
        seen = _digest(files)
        while True:
            await asyncio.sleep(self.reload_seconds)
            current = _digest(files)
            if current == seen:
                continue
            try:
                # New handshakes use the reloaded pair; the listening socket stays up throughout.
                context.load_cert_chain(self.certfile, self.keyfile)
                if self.client_ca_file is not None:
                    # Added to the CAs already trusted: a rotated client CA works before the old one goes.
                    context.load_verify_locations(cafile=str(self.client_ca_file))
            except (OSError, ssl.SSLError) as exc:
                logger.warning("certificate files changed but cannot be loaded yet: %s", exc)
                continue
            seen = current
            self._loaded_certificate()
            logger.info("reloaded the serving certificate from %s", self.certfile)

    async def _serve(self, transport: Transport, path: str, body: bytes, refused: str | None) -> Reply:
        webhook = path[1:] if path.startswith("/") else ""
        started = time.perf_counter()
        decision = "error"
        self.in_flight += 1
        try:
            if refused is not None:
                decision = "forbidden"
                return json_reply(403, {"error": refused})
            if not webhook or "/" in webhook:
                decision = "unknown-webhook"
                return json_reply(404, {"error": f"no webhook at {path[:100]!r}; POST to /<webhook id>"})
            status, answer, decision = await handle_review(self.service, transport, webhook, body)
            return json_reply(status, answer)
        finally:
            self.in_flight -= 1
            label = webhook if webhook in WEBHOOK_IDS else "-"
            self.metrics.admission_requests.labels(label, decision).inc()
            self.metrics.admission_latency.labels(label).observe(time.perf_counter() - started)


# The uid of a review too deeply nested to decode: the API server writes the request's uid before
# anything a user wrote, so the first one is the request's.
_FIRST_UID = re.compile(rb'"uid"\s*:\s*"([0-9A-Za-z-]{1,128})"')


def _too_deep(service: AdmissionService, webhook: str, raw: bytes) -> tuple[int, Mapping[str, Any], str]:
    """An object nested deeper than Python's JSON reader goes (about 1,000 levels; a FlinkDeployment's
    podTemplate can nest 10,000 deep in the API server) is answered as undecidable, not with a 400 the
    user would only see as "failed calling webhook"."""
    found = _FIRST_UID.search(raw)
    if webhook not in WEBHOOK_IDS or found is None:
        return 400, {"error": "not a usable AdmissionReview: nested too deeply to read"}, "bad-request"
    answer = service.failure(
        webhook,
        "the object nests deeper than flinkmem reads (about 1,000 levels of maps and lists; Jackson, which "
        "the Flink operator reads resources with, stops at 1,000 by default). Fix: flatten its deepest part",
        400,
    )
    return 200, response_for(found.group(1).decode(), answer, None), "allowed" if answer.allowed else "denied"


async def handle_review(
    service: AdmissionService, transport: Transport, webhook: str, raw: bytes
) -> tuple[int, Mapping[str, Any], str]:
    """One POST to `/<webhook>`: the HTTP status, the body, and the decision label of the request metric."""
    review: Review | None = None
    try:
        review = check_review(json.loads(raw.decode("utf-8")))
        request = AdmissionRequest.from_review(webhook, review)
        screened = service.screen(request)
        if screened is None:
            response = await transport(review, request)
        else:
            response = response_for(review["request"]["uid"], screened, None)
    except ReviewError as exc:
        return exc.status, {"error": str(exc)}, "unknown-webhook" if exc.status == 404 else "bad-request"
    except RecursionError:
        return _too_deep(service, webhook, raw)
    except ValueError as exc:
        return 400, {"error": f"not a usable AdmissionReview: {exc}"}, "bad-request"
    except Exception as exc:  # the transport's own machinery failed; an answer is still owed
        if review is None:
            raise
        logger.exception("serving an admission review failed")
        response = response_for(review["request"]["uid"], service.failure(webhook, type(exc).__name__), None)
    payload = response["response"]
    decision = "denied" if not payload.get("allowed") else "patched" if payload.get("patch") else "allowed"
    return 200, response, decision
