"""What the fault cases run and watch: a steady load of creates, and recorders of what became of it.

- :class:`Load` creates, at a steady rate, one FlinkDeployment and then (if it was admitted) its
  JobManager Deployment, whose pod the ReplicaSet controller creates through the API server, as the
  Flink operator would. Every create is kept with its answer.
- :class:`PodLog` watches the JobManager pods of a namespace and keeps every pod it ever saw, with
  whether the mutating webhook sized it; an unsized pod may only live for a moment before flinkmem
  evicts it, which a poll could miss.
- :class:`AnnotationLog` watches the FlinkDeployments and keeps when each got flinkmem's annotation.
- :class:`EndpointLog` polls the Service's EndpointSlices and keeps each change of its ready addresses.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from localplane.rest import Rest, Unreachable
from tests.e2e.test_webhooks import container, flinkdeployment, jobmanager_deployment

__all__ = ["AnnotationLog", "Create", "EndpointLog", "Load", "PodLog", "PodRecord", "await_all", "is_sized"]

FD_PATH = "/apis/flink.apache.org/v1beta1/namespaces/{ns}/flinkdeployments"
DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/{ns}/deployments"
RESOLVED = "flinkmem.io/resolved-memory"
MAIN = "flink-main-container"

T = TypeVar("T")


@dataclass(frozen=True)
class Create:
    """One create sent through the API server and its answer (``status`` 0: no answer at all)."""

    kind: str
    name: str
    at: float
    took: float
    status: int
    message: str

    @property
    def created(self) -> bool:
        return 200 <= self.status < 300

    @property
    def webhook_failed(self) -> bool:
        """Refused because the API server could not get an answer from flinkmem (fail closed)."""
        return self.status >= 400 and "failed calling webhook" in self.message

    @property
    def api_unavailable(self) -> bool:
        """The API server itself could not take the request: down, or still starting up (503)."""
        return self.status == 0 or (self.status >= 500 and "webhook" not in self.message)


class Load:
    """One FlinkDeployment and then its JobManager Deployment every ``1 / rate`` seconds."""

    def __init__(self, rest: Rest, namespace: str, prefix: str, rate: float = 2.0) -> None:
        self.rest = rest
        self.namespace = namespace
        self.prefix = prefix
        self.period = 1.0 / rate
        self.creates: list[Create] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"load-{prefix}", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"load-{prefix}")
        self._count = 0

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._count += 1
            self._pool.submit(self._one, f"{self.prefix}-{self._count:04d}")
            next_at += self.period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _send(self, kind: str, name: str, path: str, body: dict[str, Any]) -> Create:
        started = time.monotonic()
        try:
            answer = self.rest.call("POST", path, body, timeout=30)
            status, message = answer.status, "" if answer.ok else answer.message
        except Unreachable as exc:
            status, message = 0, str(exc)
        create = Create(kind, name, started, time.monotonic() - started, status, message)
        with self._lock:
            self.creates.append(create)
        return create

    def _one(self, name: str) -> None:
        ns = self.namespace
        fd = self._send("FlinkDeployment", name, FD_PATH.format(ns=ns), flinkdeployment(name, {}, memory="2g"))
        if fd.created:
            # As the Flink operator does: JobManager pods only for a FlinkDeployment that exists.
            self._send("Deployment", name, DEPLOYMENT_PATH.format(ns=ns), jobmanager_deployment(name))

    def of(self, kind: str) -> list[Create]:
        with self._lock:
            return [c for c in self.creates if c.kind == kind]


def is_sized(pod: Mapping[str, Any]) -> bool:
    """Whether flinkmem's mutating webhook sized this JobManager pod (JVM flags and a memory limit)."""
    main = container(dict(pod), MAIN)
    annotations = pod["metadata"].get("annotations") or {}
    return "flinkmem.io/jvm-flags" in annotations and "memory" in main.get("resources", {}).get("limits", {})


class _Watched:
    """Every object of one collection seen by a watch (relisting when the watch breaks), fed to
    :meth:`_see` from a thread of its own while the ``with`` block runs."""

    def __init__(self, rest: Rest, path: str) -> None:
        self.rest = rest
        self.path = path
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"watch {path}", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=90)

    def _see(self, obj: Mapping[str, Any], deleted: bool) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    answer = self.rest.get(self.path)
                    if not answer.ok:
                        raise Unreachable(answer.message)
                    for item in answer.body["items"]:
                        self._see(item, False)
                    version = answer.body["metadata"]["resourceVersion"]
                for event in self.rest.watch(self.path, version, seconds=5):
                    if event["type"] == "ERROR":
                        version = ""  # expired (410) or refused: list again
                        break
                    obj = event["object"]
                    version = obj["metadata"].get("resourceVersion", version)
                    if event["type"] != "BOOKMARK":
                        self._see(obj, event["type"] == "DELETED")
                    if self._stop.is_set():
                        break
            except Unreachable:
                self._stop.wait(0.5)


@dataclass
class PodRecord:
    name: str
    app: str
    seen: float
    sized: bool
    gone: float | None = None


class PodLog(_Watched):
    """Every JobManager pod of a namespace, with whether it was sized and when it went away."""

    def __init__(self, rest: Rest, namespace: str) -> None:
        selector = urllib.parse.quote("component=jobmanager")
        super().__init__(rest, f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")
        self.pods: dict[str, PodRecord] = {}

    def _see(self, obj: Mapping[str, Any], deleted: bool) -> None:
        meta = obj["metadata"]
        with self._lock:
            record = self.pods.get(meta["uid"])
            if record is None:
                app = meta.get("labels", {}).get("app", "")
                record = self.pods[meta["uid"]] = PodRecord(meta["name"], app, time.monotonic(), is_sized(obj))
            if deleted and record.gone is None:
                record.gone = time.monotonic()

    def records(self) -> list[PodRecord]:
        with self._lock:
            return list(self.pods.values())


class AnnotationLog(_Watched):
    """When each FlinkDeployment of a namespace was first seen carrying flinkmem's annotation."""

    def __init__(self, rest: Rest, namespace: str) -> None:
        super().__init__(rest, FD_PATH.format(ns=namespace))
        self.annotated: dict[str, float] = {}

    def _see(self, obj: Mapping[str, Any], deleted: bool) -> None:
        if RESOLVED in (obj["metadata"].get("annotations") or {}):
            with self._lock:
                self.annotated.setdefault(obj["metadata"]["name"], time.monotonic())

    def at(self) -> dict[str, float]:
        with self._lock:
            return dict(self.annotated)


@dataclass
class EndpointLog:
    """Each change of the set of ready addresses of a Service's EndpointSlices, polled every 0.1 s."""

    rest: Rest
    namespace: str
    service: str
    changes: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def ready(self) -> frozenset[str] | None:
        selector = urllib.parse.quote(f"kubernetes.io/service-name={self.service}")
        path = f"/apis/discovery.k8s.io/v1/namespaces/{self.namespace}/endpointslices?labelSelector={selector}"
        try:
            answer = self.rest.call("GET", path, timeout=2)
        except Unreachable:
            return None
        if not answer.ok:
            return None
        return frozenset(
            endpoint["addresses"][0]
            for item in answer.body["items"]
            for endpoint in item.get("endpoints") or []
            if endpoint.get("conditions", {}).get("ready", True)
        )

    def __enter__(self) -> EndpointLog:
        self._thread = threading.Thread(target=self._loop, name="endpoints", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            ready = self.ready()
            if ready is not None and (not self.changes or self.changes[-1][1] != ready):
                self.changes.append((time.monotonic(), ready))

    def first(self, after: float, test: Callable[[frozenset[str]], bool]) -> float | None:
        """When, after ``after``, the ready set first passed ``test``."""
        for at, ready in list(self.changes):
            if at >= after and test(ready):
                return at
        return None


def await_all(check: Callable[[], T | None], timeout: float, what: str, poll: float = 0.5) -> tuple[T, float]:
    """Polls ``check`` until it returns something; returns it and how long that took."""
    started = time.monotonic()
    while True:
        result = check()
        if result is not None and result is not False:
            return result, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(poll)


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    started = time.monotonic()
    yield lambda: time.monotonic() - started
