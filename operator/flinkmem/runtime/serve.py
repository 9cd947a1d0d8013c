"""`flinkmem serve`: the admission webhooks and, in a child process, the controller; both run on kopf."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import random
import signal
from multiprocessing.process import BaseProcess
from typing import Any

import kopf

from flinkmem.conventions import PEERING_NAME
from flinkmem.runtime.admission.kopfpath import register_admission
from flinkmem.runtime.admission.service import AdmissionService
from flinkmem.runtime.certs import ensure_self_signed
from flinkmem.runtime.cluster import Cluster, load_client
from flinkmem.runtime.controller import Controller, register
from flinkmem.runtime.devsetup import install_crd_if_absent, register_webhooks
from flinkmem.runtime.events import EventPoster
from flinkmem.runtime.health import HealthServer
from flinkmem.runtime.kopfsetup import base_settings, feed_cache, register_login
from flinkmem.runtime.lifecycle import die_with_parent, freeze_startup_objects
from flinkmem.runtime.metrics import Metrics, RelayedMetrics
from flinkmem.runtime.refusals import RefusalLog
from flinkmem.runtime.settings import Settings
from flinkmem.runtime.webserver import WebhookServer
from flinkmem.sources.cache import SourceCache

__all__ = ["run_controller", "run_webhooks", "serve_forever"]

logger = logging.getLogger("flinkmem.serve")

CONTROLLER_NICENESS = 10
# How long a reconciling replica's peering keep-alive stays valid (kopf's default is 60 s). A replica
# that dies without saying goodbye (SIGKILL, OOM, node loss) blocks the others until its keep-alive
# expires; they resume within this time. Keep-alives go out every 5 to 10 s below it.
PEERING_LIFETIME = 20


class _RefusalsAreNotErrors(logging.Filter):
    """kopf logs every refused admission as an ERROR; a refusal is flinkmem working, so it is INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and "failed permanently: flinkmem refused" in record.getMessage():
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s",
    )
    objects = logging.getLogger("kopf.objects")
    objects.addFilter(_RefusalsAreNotErrors())
    if not verbose:
        # kopf logs a success line for every admission request and every handled event; at a few
        # hundred pods a second that costs the serving process a tenth of its CPU and floods the log.
        # Metrics count them. Refusals are logged at ERROR by kopf, so they still get through.
        objects.setLevel(logging.WARNING)


def serve_forever(settings: Settings, verbose: bool = False) -> int:
    """Webhooks in this process, the controller in a child process, so that a burst of reconciling
    never holds up an admission answer on the shared event loop (or the GIL)."""
    _configure_logging(verbose)
    context = multiprocessing.get_context("spawn")
    relay: multiprocessing.Queue[Any] = context.Queue()
    controller = context.Process(
        target=_controller_main, args=(settings, verbose, relay, os.getpid()), name="controller", daemon=True
    )
    controller.start()
    freeze_startup_objects()
    try:
        healthy = asyncio.run(run_webhooks(settings, controller, relay))
    finally:
        if controller.is_alive():
            controller.terminate()
        controller.join(15)
    return 0 if healthy else 1


def _controller_main(settings: Settings, verbose: bool, relay: Any, parent: int) -> None:
    die_with_parent(parent)
    _configure_logging(verbose)
    # The parent decides when to stop; a terminal's Ctrl-C reaches both, and the parent's wins.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Admission answers hold up someone's `kubectl apply`; reconciling can wait. Measured at 100 creates/s
    # on two shared cores, an equal-priority controller stretched the webhook's p99 more than tenfold.
    os.nice(CONTROLLER_NICENESS)
    freeze_startup_objects()
    asyncio.run(run_controller(settings, relay))


async def run_controller(settings: Settings, relay: Any) -> None:
    api = load_client()
    metrics = RelayedMetrics(relay)
    cluster = Cluster(settings, metrics, api)
    events = EventPoster(cluster)
    registry = kopf.OperatorRegistry()
    register_login(registry)
    cache = SourceCache(cluster, settings.container_name)
    register(registry, Controller(settings, cluster, cache, metrics, events))
    ks = base_settings()
    ks.peering.name = PEERING_NAME
    ks.peering.mandatory = False
    ks.peering.clusterwide = settings.clusterwide
    ks.peering.lifetime = PEERING_LIFETIME
    # Equal priorities make kopf freeze every replica; a random one elects a single reconciler.
    ks.peering.priority = random.randint(1, 10_000)
    try:
        await kopf.operator(
            registry=registry, settings=ks, clusterwide=settings.clusterwide, namespaces=list(settings.namespaces)
        )
    finally:
        await events.drain()
        await cluster.close()


async def _relay_metrics(relay: Any, metrics: Metrics) -> None:
    while True:
        try:
            record = await asyncio.to_thread(relay.get, True, 0.5)
        except queue.Empty:
            continue
        metrics.apply(record)


async def _flush_refusals(refusals: RefusalLog) -> None:
    while True:
        await asyncio.sleep(refusals.interval)
        refusals.flush()


async def _watch_controller(controller: BaseProcess, stop: asyncio.Event) -> None:
    while controller.is_alive():
        await asyncio.sleep(1.0)
    logger.error("the controller process exited (code %s); stopping so the pod is restarted", controller.exitcode)
    stop.set()


async def run_webhooks(settings: Settings, controller: BaseProcess, relay: Any) -> bool:
    """Serves the webhooks until stopped; False when it stopped because the controller died."""
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
    cluster = Cluster(settings, metrics, api)
    cache = SourceCache(cluster, settings.container_name)
    events = EventPoster(cluster)
    refusals = RefusalLog(logging.getLogger("flinkmem.refusals"))
    service = AdmissionService(settings, cache, metrics, events, refusals)
    server = WebhookServer(
        addr=settings.bind_address,
        port=settings.webhook_port,
        certfile=certfile,
        keyfile=keyfile,
        cafile=cafile,
        metrics=metrics,
        service=service,
        engine=settings.admission_engine,
        max_request_bytes=settings.max_request_bytes,
        reload_seconds=settings.cert_reload_seconds,
        tls_min_version=settings.tls_min_version,
        client_ca_file=settings.client_ca_file,
        client_names=settings.client_names,
        advertised_url=settings.register_url,
    )
    if settings.register_url:
        register_webhooks(api, settings, settings.register_url, cafile or certfile)
    health = HealthServer(settings.bind_address, settings.health_port, metrics, server.ready, controller.is_alive)
    await health.start()
    registry = kopf.OperatorRegistry()
    register_login(registry)
    feed_cache(registry, settings.resource, cache)
    register_admission(registry, service, settings.resource)
    ks = base_settings()
    ks.admission.server = server  # type: ignore[assignment]  # kopf types only its own servers
    ks.admission.managed = None
    stop = asyncio.Event()
    helpers = [
        asyncio.create_task(_relay_metrics(relay, metrics)),
        asyncio.create_task(_watch_controller(controller, stop)),
        asyncio.create_task(_flush_refusals(refusals)),
    ]
    try:
        await kopf.operator(
            registry=registry,
            settings=ks,
            clusterwide=settings.clusterwide,
            namespaces=list(settings.namespaces),
            standalone=True,
            stop_flag=stop,
        )
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await events.drain()
        await cluster.close()
        await health.stop()
    return controller.is_alive()
