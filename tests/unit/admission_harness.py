"""The admission service wired as `flinkmem serve` wires it, minus the network: for the unit tests.

`Harness.post(webhook, body, engine)` is what one HTTPS POST does (`webserver.handle_review`), through
the direct transport or kopf's admission engine (in process), over the same service; Events, metrics
and refusal log lines are recorded so both transports can be compared.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from flinkmem.runtime.admission.direct import DirectTransport
from flinkmem.runtime.admission.kopfpath import InProcessKopf, KopfTransport, register_admission
from flinkmem.runtime.admission.service import AdmissionService
from flinkmem.runtime.events import EventPoster
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.refusals import RefusalLog
from flinkmem.runtime.settings import Settings
from flinkmem.runtime.webserver import handle_review
from flinkmem.sources.cache import SourceCache

FD = {"group": "flink.apache.org", "version": "v1beta1", "resource": "flinkdeployments"}
PODS = {"group": "", "version": "v1", "resource": "pods"}


class RecordedEvents:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str, str]] = []  # (object name, type, reason, message)

    async def post_event(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        self.posted.append((str((target.get("metadata") or {}).get("name")), type_, reason, message))


class Lookup:
    """The API reads behind the service's source cache: one FlinkDeployment, or a failure."""

    def __init__(self, deployment: Mapping[str, Any] | None = None, fail: Exception | None = None) -> None:
        self.deployment = deployment
        self.fail = fail

    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        if self.fail is not None:
            raise self.fail
        return self.deployment

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return None


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def review(resource: Mapping[str, str], obj: Any, operation: str = "CREATE", old: Any = None, **extra: Any) -> bytes:
    request = {
        "uid": "u-1",
        "resource": dict(resource),
        "operation": operation,
        "userInfo": {"username": "alice"},
        "object": obj,
        "oldObject": old,
        "namespace": "jobs",
        **extra,
    }
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}).encode()


_NAMES = itertools.count()


class Harness:
    def __init__(self, lookup: Lookup | None = None, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.metrics = Metrics()
        self.sink = RecordedEvents()
        self.events = EventPoster(self.sink)
        self.log = _Lines()
        logger = logging.getLogger(f"test.refusals.{next(_NAMES)}")  # a fresh logger each
        logger.addHandler(self.log)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        cache = SourceCache(lookup or Lookup(), self.settings.container_name)
        self.service = AdmissionService(self.settings, cache, self.metrics, self.events, RefusalLog(logger))
        registry = kopf.OperatorRegistry()
        bluegreen = self.settings.bluegreen_resource
        register_admission(registry, self.service, self.settings.resource, bluegreen)
        self.kopf = KopfTransport(InProcessKopf(registry, self.settings.resource, bluegreen))
        self.direct = DirectTransport(self.service)

    async def apost(self, webhook: str, body: bytes, engine: str = "direct") -> tuple[int, Any, str]:
        transport = self.direct if engine == "direct" else self.kopf
        status, answer, decision = await handle_review(self.service, transport, webhook, body)
        await self.events.drain()
        return status, answer, decision

    def post(self, webhook: str, body: bytes, engine: str = "direct") -> tuple[int, Any, str]:
        return asyncio.run(self.apost(webhook, body, engine))

    def response(self, webhook: str, body: bytes, engine: str = "direct") -> dict[str, Any]:
        status, answer, _ = self.post(webhook, body, engine)
        assert status == 200, answer
        payload: dict[str, Any] = answer["response"]
        assert payload["uid"] == "u-1"
        return payload

    def resolutions(self) -> list[str]:
        text = self.metrics.exposition().decode()
        return sorted(line for line in text.splitlines() if line.startswith("flinkmem_resolutions_total{"))
