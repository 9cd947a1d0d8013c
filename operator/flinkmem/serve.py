"""`flinkmem serve`: the admission webhooks and the controller in one kopf operator process."""

from __future__ import annotations

import asyncio
import logging
import random

import kopf

from flinkmem.certs import ensure_self_signed
from flinkmem.cluster import Cluster, load_client
from flinkmem.devsetup import install_crd_if_absent, register_webhooks
from flinkmem.handlers import register
from flinkmem.metrics import Metrics
from flinkmem.settings import ANNOTATION_PREFIX, Settings
from flinkmem.webserver import HealthServer, WebhookServer

__all__ = ["run", "serve_forever"]

logger = logging.getLogger("flinkmem.serve")


class _RefusalsAreNotErrors(logging.Filter):
    """kopf logs every refused admission as an ERROR; a refusal is flinkmem working, so it is INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and "failed permanently: flinkmem refused" in record.getMessage():
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def serve_forever(settings: Settings, verbose: bool = False) -> int:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kopf.objects").addFilter(_RefusalsAreNotErrors())
    asyncio.run(run(settings))
    return 0


def _kopf_settings(settings: Settings, server: WebhookServer) -> kopf.OperatorSettings:
    ks = kopf.OperatorSettings()
    ks.admission.server = server  # type: ignore[assignment]  # kopf types only its own servers
    ks.admission.managed = None
    # kopf's own bookkeeping stays in annotations under our prefix; `status` belongs to the Apache operator.
    ks.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    ks.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    ks.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
    ks.posting.level = logging.WARNING
    ks.execution.max_workers = 8
    ks.networking.request_timeout = 30
    ks.peering.name = "flinkmem"
    ks.peering.mandatory = False
    ks.peering.clusterwide = settings.clusterwide
    # Equal priorities make kopf freeze every replica; a random one elects a single reconciler.
    ks.peering.priority = random.randint(1, 10_000)
    return ks


async def run(settings: Settings) -> None:
    api = load_client()
    certfile, keyfile, cafile = settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file
    if certfile is None or keyfile is None:
        assert settings.self_signed_dir is not None
        hosts = ["127.0.0.1", "localhost", *settings.extra_sans]
        paths = ensure_self_signed(settings.self_signed_dir, hosts)
        certfile, keyfile, cafile = paths.cert, paths.key, paths.ca
    if settings.install_crd:
        install_crd_if_absent(api)
    metrics = Metrics()
    server = WebhookServer(
        addr=settings.bind_address,
        port=settings.webhook_port,
        certfile=certfile,
        keyfile=keyfile,
        cafile=cafile,
        metrics=metrics,
        max_request_bytes=settings.max_request_bytes,
        reload_seconds=settings.cert_reload_seconds,
        advertised_url=settings.register_url,
    )
    if settings.register_url:
        register_webhooks(api, settings, settings.register_url, cafile or certfile)
    health = HealthServer(settings.bind_address, settings.health_port, metrics, server.ready)
    await health.start()
    registry = kopf.OperatorRegistry()
    cluster = Cluster(settings, metrics, api)
    register(registry, cluster)
    try:
        await kopf.operator(
            registry=registry,
            settings=_kopf_settings(settings, server),
            clusterwide=settings.clusterwide,
            namespaces=list(settings.namespaces),
        )
    finally:
        await cluster.close()
        await health.stop()
