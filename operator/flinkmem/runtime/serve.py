"""`flinkmem serve`: the admission webhooks and, in a child process, the controller; both run on kopf.

How it stops (SIGTERM from the kubelet, after the chart's preStop delay; SIGINT from a terminal):

1. The main thread only waits and handles signals, so it acts at once even while the event loop
   (in a thread of its own) is busy with a review: it passes SIGTERM on to the controller process,
   which says goodbye to the peering so another replica reconciles at once, and asks the loop to stop.
2. `/readyz` answers 503 and `flinkmem_ready` is 0 from then on.
3. After SIGTERM the webhooks keep answering for `STOP_DELAY_SECONDS` more, for the API server to
   stop sending here: the endpoint of a terminating pod is not ready, and the API server (or
   kube-proxy) follows the endpoints within moments (measured: docs/operations.md). After SIGINT
   there is no delay.
4. The HTTPS port closes, idle connections close, and the reviews in flight are answered (at most
   `DRAIN_SECONDS`).
5. kopf stops, then the process exits once the controller has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import random
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import kopf

from flinkmem.conventions import PEERING_NAME
from flinkmem.runtime.admission.kopfpath import register_admission
from flinkmem.runtime.admission.service import AdmissionService
from flinkmem.runtime.certs import ensure_self_signed
from flinkmem.runtime.cluster import Cluster
from flinkmem.runtime.controller import Controller, register
from flinkmem.runtime.credentials import Credentials, CredentialsError, load_credentials
from flinkmem.runtime.devsetup import install_crd_if_absent, register_webhooks
from flinkmem.runtime.events import EventPoster
from flinkmem.runtime.health import HealthServer
from flinkmem.runtime.kopfsetup import base_settings, register_login
from flinkmem.runtime.lifecycle import (
    collect_garbage_on_growth,
    die_with_parent,
    fix_mmap_threshold,
    freeze_startup_objects,
)
from flinkmem.runtime.metrics import Metrics, RelayedMetrics
from flinkmem.runtime.ratelimit import TokenBucket
from flinkmem.runtime.refusals import RefusalLog
from flinkmem.runtime.settings import Settings
from flinkmem.runtime.watch import cache_feeds
from flinkmem.runtime.webserver import WebhookServer
from flinkmem.sources.cache import SourceCache

__all__ = ["run_controller", "run_webhooks", "serve_forever"]

logger = logging.getLogger("flinkmem.serve")

CONTROLLER_NICENESS = 10
# How long a reconciling replica's peering keep-alive stays valid (kopf's default is 60 s). A replica
# that dies without saying goodbye (SIGKILL, OOM, node loss) blocks the others until its keep-alive
# expires; they resume within this time. Keep-alives go out every 5 to 10 s below it.
PEERING_LIFETIME = 20
# After SIGTERM, how long the webhooks keep answering before the port closes: the API server must have
# stopped sending here by then. The chart's preStop delay comes first (the pod is already terminating
# and out of the endpoints then); this covers runtimes without one.
STOP_DELAY_SECONDS = 2.0
# How long the reviews in flight may take to be answered once the port is closed: longer than the
# API server waits for a webhook (the chart: 5 s; Kubernetes' maximum: 30 s).
DRAIN_SECONDS = 10.0
# How long the Events still waiting for their turn (runtime.events) may hold a stop up; the rest are
# given up: an Event only informs.
EVENTS_DRAIN_SECONDS = 3.0
# How long the controller process may take to stop (kopf's goodbye to the peering) before SIGKILL.
CONTROLLER_STOP_SECONDS = 15.0


class _KopfSignalsNote(logging.Filter):
    """kopf warns that it ignores OS signals when it runs outside the main thread: flinkmem handles them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "OS signals are ignored" not in record.getMessage()


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
    logging.getLogger("kopf._core.reactor.running").addFilter(_KopfSignalsNote())
    objects = logging.getLogger("kopf.objects")
    objects.addFilter(_RefusalsAreNotErrors())
    if not verbose:
        # kopf logs a success line for every admission request and every handled event; at a few
        # hundred pods a second that costs the serving process a tenth of its CPU and floods the log.
        # Metrics count them. Refusals are logged at ERROR by kopf, so they still get through.
        objects.setLevel(logging.WARNING)


class _Stop:
    """SIGTERM and SIGINT, acted on in the main thread at once, whatever the event loop is doing; the
    first one counts (a process group's SIGTERM and the one passed on reach the controller both)."""

    def __init__(self, controller: BaseProcess | None) -> None:
        self.controller = controller
        self.signal: signal.Signals | None = None
        self.at: float | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._begin: Callable[[signal.Signals], None] | None = None

    def install(self, *signals: signal.Signals) -> None:
        for sig in signals or (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.handle)

    def attach(self, loop: asyncio.AbstractEventLoop, begin: Callable[[signal.Signals], None]) -> None:
        """The event loop's side of the stop; called at once if a signal came first."""
        with self._lock:
            self._loop, self._begin = loop, begin
            pending = self.signal
        if pending is not None:
            loop.call_soon_threadsafe(begin, pending)

    def handle(self, signum: int, _: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if self.signal is not None:
            logger.info("%s: already stopping (since %s)", sig.name, self.signal.name)
            return
        self.signal, self.at = sig, time.monotonic()
        self.forward_to_controller()
        with self._lock:
            loop, begin = self._loop, self._begin
        if loop is not None and begin is not None:
            loop.call_soon_threadsafe(begin, sig)

    def forward_to_controller(self) -> None:
        """SIGTERM to the controller process, now: kopf there hands the peering over while this one drains."""
        if self.controller is None:
            return
        pid = self.controller.pid
        if pid is not None and self.controller.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def serve_forever(settings: Settings, verbose: bool = False) -> int:
    """Webhooks in this process, the controller in a child process, so that a burst of reconciling
    never holds up an admission answer on the shared event loop (or the GIL). The event loop runs in a
    thread; the main thread handles signals (see the module's docstring)."""
    fix_mmap_threshold()
    _configure_logging(verbose)
    try:
        credentials = load_credentials()
    except CredentialsError as exc:
        logger.error("no credentials for the Kubernetes API: %s", exc)
        return 1
    logger.info("Kubernetes API %s (%s)", credentials.server, credentials.source)
    context = multiprocessing.get_context("spawn")
    relay: multiprocessing.Queue[Any] = context.Queue()
    controller = context.Process(
        target=_controller_main,
        args=(settings, verbose, relay, os.getpid(), credentials),
        name="controller",
        daemon=True,
    )
    controller.start()
    stop = _Stop(controller)
    stop.install()
    freeze_startup_objects()
    collect_garbage_on_growth()
    outcome: dict[str, Any] = {}

    def webhooks() -> None:
        try:
            outcome["healthy"] = asyncio.run(run_webhooks(settings, controller, relay, credentials, stop))
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=webhooks, name="webhooks")
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)  # wakes for signals: the handler runs here
    finally:
        if stop.signal is None:
            stop.forward_to_controller()
        controller.join(CONTROLLER_STOP_SECONDS)
        if controller.is_alive():
            logger.warning("the controller process did not stop in %.0f s; killing it", CONTROLLER_STOP_SECONDS)
            controller.kill()
            controller.join(5)
    if stop.at is not None:
        logger.info("stopped %.1f s after %s", time.monotonic() - stop.at, stop.signal.name if stop.signal else "")
    if "error" in outcome:
        raise outcome["error"]
    return 0 if outcome.get("healthy") else 1


def _controller_main(settings: Settings, verbose: bool, relay: Any, parent: int, credentials: Credentials) -> None:
    die_with_parent(parent)
    fix_mmap_threshold()
    _configure_logging(verbose)
    # The parent decides when to stop; a terminal's Ctrl-C reaches both, and the parent's wins.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Admission answers hold up someone's `kubectl apply`; reconciling can wait. Measured at 100 creates/s
    # on two shared cores, an equal-priority controller stretched the webhook's p99 more than tenfold.
    os.nice(CONTROLLER_NICENESS)
    # As in the serving process: kopf runs in a thread, this one takes SIGTERM (once).
    stop = _Stop(None)
    stop.install(signal.SIGTERM)
    freeze_startup_objects()
    collect_garbage_on_growth()
    thread = threading.Thread(
        target=lambda: asyncio.run(run_controller(settings, relay, credentials, stop)), name="controller"
    )
    thread.start()
    while thread.is_alive():
        thread.join(0.5)


async def run_controller(settings: Settings, relay: Any, credentials: Credentials, stop: _Stop | None = None) -> None:
    metrics = RelayedMetrics(relay)
    cluster = Cluster(settings, metrics, credentials)
    events = EventPoster(cluster)
    registry = kopf.OperatorRegistry()
    register_login(registry, credentials)
    cache = SourceCache(cluster, settings.container_name)
    register(registry, Controller(settings, cluster, cache, metrics, events))
    ks = base_settings()
    ks.peering.name = PEERING_NAME
    ks.peering.mandatory = False
    ks.peering.clusterwide = settings.clusterwide
    ks.peering.lifetime = PEERING_LIFETIME
    # Equal priorities make kopf freeze every replica; a random one elects a single reconciler.
    ks.peering.priority = random.randint(1, 10_000)
    kopf_stop = asyncio.Event()
    if stop is not None:
        stop.attach(asyncio.get_running_loop(), lambda _: kopf_stop.set())
    try:
        await kopf.operator(
            registry=registry,
            settings=ks,
            clusterwide=settings.clusterwide,
            namespaces=list(settings.namespaces),
            stop_flag=kopf_stop,
        )
    finally:
        await events.drain(timeout=EVENTS_DRAIN_SECONDS)
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


async def _watch_controller(
    controller: BaseProcess, stop: Callable[[str, float], None], stopping: Callable[[], bool]
) -> None:
    while controller.is_alive():
        await asyncio.sleep(1.0)
    if stopping():
        return  # it was told to stop
    logger.error("the controller process exited (code %s); stopping so the pod is restarted", controller.exitcode)
    stop("the controller process exited", 0.0)


async def run_webhooks(
    settings: Settings, controller: BaseProcess, relay: Any, credentials: Credentials, stop: _Stop | None = None
) -> bool:
    """Serves the webhooks until stopped; False when it stopped because the controller died."""
    certfile, keyfile, cafile = settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file
    if certfile is None or keyfile is None:
        assert settings.self_signed_dir is not None
        hosts = ["127.0.0.1", "localhost", *settings.extra_sans]
        paths = ensure_self_signed(settings.self_signed_dir, hosts)
        certfile, keyfile, cafile = paths.cert, paths.key, paths.ca
    metrics = Metrics()
    cluster = Cluster(settings, metrics, credentials)
    if settings.install_crd:
        await install_crd_if_absent(cluster)
    cache = SourceCache(cluster, settings.container_name)
    # The webhook's Events are paced like the controller's writes: they must not crowd a burst of creates.
    events = EventPoster(cluster, TokenBucket(settings.controller_qps, settings.controller_burst))
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
        drain_seconds=DRAIN_SECONDS,
    )
    if settings.register_url:
        await register_webhooks(cluster, settings, settings.register_url, cafile or certfile)
    health = HealthServer(settings.bind_address, settings.health_port, metrics, server.ready, controller.is_alive)
    await health.start()
    registry = kopf.OperatorRegistry()
    register_login(registry, credentials)
    feeds = cache_feeds(cluster, settings.resource, settings.namespaces, cache)
    register_admission(registry, service, settings.resource, settings.bluegreen_resource)
    ks = base_settings()
    ks.admission.server = server  # type: ignore[assignment]  # kopf types only its own servers
    ks.admission.managed = None
    kopf_stop = asyncio.Event()
    helpers: list[asyncio.Task[None]] = []
    stopping: list[asyncio.Task[None]] = []

    async def graceful(why: str, delay: float) -> None:
        started = time.monotonic()
        health.mark_stopping()
        logger.info("%s: not ready; answering for %.1f s more, then draining", why, delay)
        await asyncio.sleep(delay)
        in_flight = await server.stop()
        logger.info("webhook port closed; %d reviews were in flight, all answered", in_flight)
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await health.stop()
        logger.info("webhooks stopped %.1f s after %s; stopping kopf", time.monotonic() - started, why)
        kopf_stop.set()

    def begin(why: str, delay: float) -> None:
        if not stopping:
            stopping.append(asyncio.get_running_loop().create_task(graceful(why, delay)))

    def on_signal(sig: signal.Signals) -> None:
        begin(sig.name, STOP_DELAY_SECONDS if sig == signal.SIGTERM else 0.0)

    helpers += [
        asyncio.create_task(_relay_metrics(relay, metrics)),
        asyncio.create_task(_watch_controller(controller, begin, lambda: health.stopping)),
        asyncio.create_task(_flush_refusals(refusals)),
        *(asyncio.create_task(feed.run()) for feed in feeds),
    ]
    if stop is not None:
        stop.attach(asyncio.get_running_loop(), on_signal)
    try:
        await kopf.operator(
            registry=registry,
            settings=ks,
            clusterwide=settings.clusterwide,
            namespaces=list(settings.namespaces),
            standalone=True,
            stop_flag=kopf_stop,
        )
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, *stopping, return_exceptions=True)
        await server.stop()
        await events.drain(timeout=EVENTS_DRAIN_SECONDS)
        await cluster.close()
        await health.stop()
    # Stopped by a signal, the controller was told to stop too; otherwise it must still run.
    return controller.is_alive() or (stop is not None and stop.signal is not None)
