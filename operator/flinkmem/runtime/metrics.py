"""Prometheus metrics of the webhooks and the controller, in one private registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics", "RelayedMetrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.admission_requests = Counter(
            "flinkmem_admission_requests",
            "Admission requests by webhook and decision.",
            ["webhook", "decision"],
            registry=self.registry,
        )
        self.admission_latency = Histogram(
            "flinkmem_admission_duration_seconds",
            "Time to answer an admission request.",
            ["webhook"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.resolutions = Counter(
            "flinkmem_resolutions",
            "JobManager memory resolutions by result (valid or the broken rule).",
            ["source", "result"],
            registry=self.registry,
        )
        self.drift = Counter(
            "flinkmem_drift_detected",
            "JobManager pods found not matching their derived memory.",
            ["namespace"],
            registry=self.registry,
        )
        self.evictions = Counter(
            "flinkmem_drift_evictions", "Drifted JobManager pods evicted.", ["namespace"], registry=self.registry
        )

        self.ready = Gauge(
            "flinkmem_ready",
            "1 while this replica is ready to answer admission requests (its /readyz says ok), else 0.",
            registry=self.registry,
        )
        self.ready.set(0)
        self.certificate_expiry = Gauge(
            "flinkmem_serving_certificate_expiry_timestamp_seconds",
            "When the serving certificate this replica has loaded expires (Unix time), set at start and "
            "on each reload.",
            registry=self.registry,
        )

    def follow_readiness(self, ready: Callable[[], bool]) -> None:
        """`flinkmem_ready` reads `ready` at each scrape."""
        self.ready.set_function(lambda: 1.0 if ready() else 0.0)

    def count_resolution(self, source: str, result: str) -> None:
        self.resolutions.labels(source, result).inc()

    def count_drift(self, namespace: str) -> None:
        self.drift.labels(namespace).inc()

    def count_eviction(self, namespace: str) -> None:
        self.evictions.labels(namespace).inc()

    def apply(self, record: tuple[str, tuple[str, ...]]) -> None:
        """Applies a counted event relayed from the controller process."""
        name, labels = record
        if name == "resolution":
            self.count_resolution(*labels)
        elif name == "drift":
            self.count_drift(*labels)
        elif name == "eviction":
            self.count_eviction(*labels)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RelayedMetrics(Metrics):
    """The controller process's metrics: each count goes to the serving process, which exposes them all."""

    def __init__(self, sink: Any) -> None:
        super().__init__()
        self.sink = sink

    def count_resolution(self, source: str, result: str) -> None:
        self.sink.put_nowait(("resolution", (source, result)))

    def count_drift(self, namespace: str) -> None:
        self.sink.put_nowait(("drift", (namespace,)))

    def count_eviction(self, namespace: str) -> None:
        self.sink.put_nowait(("eviction", (namespace,)))
