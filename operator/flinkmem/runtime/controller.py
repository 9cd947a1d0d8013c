"""The controller: what one replica at a time does with FlinkDeployments, Flink's ConfigMaps and pods.

It records each FlinkDeployment's resolved memory (an annotation and an Event), and each
FlinkBlueGreenDeployment's (the FlinkDeployment its template deploys), reports Flink pods
whose memory does not match their source (and, with `--evict-drifted` in enforce mode, evicts them so
that they come back through the webhook), and reports where a FlinkDeployment and Flink's own
ConfigMap of the same cluster resolve differently. Its writes are informational, so they go through a
token bucket. The conclusions are `decisions.reconcile`'s; this class holds the state between events
and acts on them. `register` hooks it into kopf's watches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import kopf

from flinkmem.conventions import (
    APP_LABEL,
    COMPONENT_LABEL,
    CONFIGMAP_PREFIX,
    REASON_CONFIG_DIFFERS,
    REASON_DRIFT,
    REASON_DRIFT_EVICTED,
    RESOLVED_ANNOTATION,
)
from flinkmem.decisions.bluegreen import validate_bluegreen
from flinkmem.decisions.policy import ValidationMode
from flinkmem.decisions.reconcile import (
    MEMORY_OPTION_PREFIXES,
    Drift,
    options_that_differ,
    pod_drift,
    reconcile_deployment,
    source_differences,
)
from flinkmem.runtime.cluster import OwnerLookupError
from flinkmem.runtime.events import EventPoster
from flinkmem.runtime.kopfsetup import is_flink_configmap
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.ratelimit import TokenBucket
from flinkmem.runtime.settings import Settings
from flinkmem.sources.autoscaler import memory_tuning_enabled
from flinkmem.sources.cache import SourceCache
from flinkmem.sources.flinkconfig import ConfigMapError, from_flink_configmap
from flinkmem.sources.model import MainContainer
from flinkmem.sources.pods import open_pod, pod_role
from flinkmem.sources.roles import JOBMANAGER, TASKMANAGER

__all__ = ["ClusterApi", "Controller", "register"]

logger = logging.getLogger("flinkmem.controller")

DELETED = "DELETED"
# kopf's type of the events of its listing (at start, and after a watch had to start over).
LISTED = "None"


class ClusterApi(Protocol):
    """The API calls the controller makes besides Events."""

    async def list_pods(self, namespace: str, label_selector: str) -> list[Mapping[str, Any]]: ...

    async def evict_pod(self, namespace: str, name: str) -> bool: ...


def _key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Controller:
    def __init__(
        self,
        settings: Settings,
        api: ClusterApi,
        cache: SourceCache,
        metrics: Metrics,
        events: EventPoster,
    ) -> None:
        self.settings = settings
        self.api = api
        self.cache = cache
        self.metrics = metrics
        self.events = events
        self.throttle = TokenBucket(settings.controller_qps, settings.controller_burst)
        # (pod uid, differences) already reported, so a pod is told about once per difference.
        self.drift_seen: set[tuple[str, tuple[str, ...]]] = set()
        # The uids of the Flink pods the pod watch has shown, by (namespace, cluster id): a cluster none of
        # whose pods was seen yet needs no list when its source arrives (its pods are checked as they come).
        self.pods_seen: dict[tuple[str, str], set[str]] = {}
        # Per cluster, what its FlinkDeployment and Flink's ConfigMap were last found to disagree on.
        self.differences_seen: dict[tuple[str, str], tuple[str, ...]] = {}
        # Follow-up checks running, by (kind, namespace, name); and those asked for again meanwhile.
        self._follow_ups: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._again: set[tuple[str, str, str]] = set()
        # Follow-ups that must look at every pod of their cluster, those flinkmem sized included.
        self._every_pod: set[tuple[str, str, str]] = set()

    @property
    def evicts(self) -> bool:
        """Eviction replaces drifted pods only where flinkmem enforces (warn and audit only report)."""
        return self.settings.evict_drifted and self.settings.validation_mode is ValidationMode.ENFORCE

    # --- FlinkDeployments --------------------------------------------------------------------------

    async def on_flinkdeployment(self, event_type: str, body: Mapping[str, Any]) -> str | None:
        """Handles a watch event; returns the resolved-memory annotation to write, if it changed."""
        key = _key(body)
        if event_type == DELETED or (body.get("metadata") or {}).get("deletionTimestamp"):
            self.cache.forget_deployment(*key)
            self.differences_seen.pop(key, None)
            return None
        if not self.settings.scope.covers(key[0]):
            return None
        previous, current = self.cache.remember_deployment(body)
        annotation: str | None = None
        result = reconcile_deployment(body, self.settings.container_name)
        if result.changed:
            rule = "valid" if result.validation.valid else result.validation.conflicts[0].code
            self.metrics.count_resolution("controller", rule)
            await self.throttle.acquire()
            annotation = result.annotation
            self.events.post(body, result.event_type, result.reason, result.message)
        # Pods admitted before this FlinkDeployment existed, or before its memory changed, were sized
        # from something else (or not at all). Those flinkmem sized are checked only when it changed, or
        # when it was listed at start (it may have changed while no controller ran).
        if previous is None or previous.inputs != current.inputs:
            self._follow_up("deployment", *key, every_pod=previous is not None or event_type == LISTED)
        return annotation

    # --- follow-ups ---------------------------------------------------------------------------------

    def _follow_up(self, kind: str, namespace: str, name: str, *, every_pod: bool) -> None:
        """The checks a new or changed source calls for, run after its event handler returns.

        They wait on the API and the token bucket; run inside the handler, they would keep the whole
        object of the event alive meanwhile (kopf holds it until the handler returns), and a tenant's
        burst of 900 KiB ConfigMaps would be held all at once. They read the cache, never the event.
        One run per object at a time: a change meanwhile runs it once more afterwards.
        """
        key = (kind, namespace, name)
        if every_pod:
            self._every_pod.add(key)
        if key in self._follow_ups:
            self._again.add(key)
            return
        self._follow_ups[key] = asyncio.create_task(self._run_follow_up(key))

    async def _run_follow_up(self, key: tuple[str, str, str]) -> None:
        kind, namespace, name = key
        work: Callable[[str, str, bool], Awaitable[None]] = (
            self._deployment_follow_up if kind == "deployment" else self._configmap_follow_up
        )
        try:
            while True:
                every_pod = key in self._every_pod
                self._every_pod.discard(key)
                try:
                    await work(namespace, name, every_pod)
                except OwnerLookupError as exc:
                    logger.warning("checking the pods of %s/%s skipped: %s", namespace, name, exc)
                except Exception:
                    logger.exception("checking %s %s/%s failed", kind, namespace, name)
                if key not in self._again:
                    return
                self._again.discard(key)
        finally:
            del self._follow_ups[key]

    async def settle(self) -> None:
        """Until every follow-up has run (tests; a stopping controller)."""
        while self._follow_ups:
            await asyncio.gather(*self._follow_ups.values(), return_exceptions=True)

    async def _deployment_follow_up(self, namespace: str, name: str, every_pod: bool) -> None:
        await self.check_cluster_pods(namespace, name, every_pod)
        await self.compare_with_flink(namespace, name)

    async def _configmap_follow_up(self, namespace: str, name: str, every_pod: bool) -> None:
        if self.cache.cached_deployment(namespace, name) is not None:
            await self.compare_with_flink(namespace, name)
        else:
            # Flink's client writes this ConfigMap after the JobManager Deployment, so its first pod
            # was usually admitted before there was anything to size it from.
            await self.check_cluster_pods(namespace, name, every_pod)

    # --- FlinkBlueGreenDeployments -----------------------------------------------------------------

    async def on_bluegreen(self, event_type: str, body: Mapping[str, Any]) -> str | None:
        """Handles a watch event of a blue/green deployment; returns the resolved-memory annotation to write,
        if it changed. Its pods are its children's (FlinkDeployments of their own), so only the record and
        the Event are its own."""
        if event_type == DELETED or (body.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if not self.settings.scope.covers(_key(body)[0]):
            return None
        result = reconcile_deployment(body, self.settings.container_name, validate_bluegreen)
        if not result.changed:
            return None
        rule = "valid" if result.validation.valid else result.validation.conflicts[0].code
        self.metrics.count_resolution("controller", rule)
        await self.throttle.acquire()
        self.events.post(body, result.event_type, result.reason, result.message)
        return result.annotation

    # --- Flink's ConfigMaps ------------------------------------------------------------------------

    async def on_configmap(self, event_type: str, body: Mapping[str, Any]) -> None:
        namespace, name = _key(body)
        key = (namespace, name.removeprefix(CONFIGMAP_PREFIX))
        if event_type == DELETED:
            self.cache.forget_configmap(*key)
            return
        if not self.settings.scope.covers(namespace):
            return
        known = self.cache.cached_configmap(*key) is not None
        if not self.cache.remember_configmap(body):
            return  # its file is as it was
        self._follow_up("configmap", *key, every_pod=known or event_type == LISTED)

    async def compare_with_flink(self, namespace: str, name: str) -> None:
        """A FlinkDeployment and Flink's own ConfigMap of the same cluster, resolved side by side."""
        deployment = self.cache.cached_deployment(namespace, name)
        configmap = self.cache.cached_configmap(namespace, name)
        if deployment is None or configmap is None:
            return
        ours = deployment.source
        if ours is None:
            return
        try:
            flinks = from_flink_configmap(
                configmap,
                mode=ours.mode,
                pod_annotations={},
                image=None,
                role_key=JOBMANAGER.key,
                container=MainContainer(),
                version=ours.version,
            )
        except ConfigMapError:
            return
        found = source_differences(ours, flinks)
        if self.differences_seen.get((namespace, name)) == found:
            return
        self.differences_seen[(namespace, name)] = found
        if not found:
            return
        options = options_that_differ(ours, flinks, MEMORY_OPTION_PREFIXES)
        # The differences (JVM flags among them) run long and the Event keeps only EVENT_MESSAGE_LIMIT
        # characters: what the user acts on comes first.
        differs = f" (options that differ: {', '.join(options)})" if options else ""
        details = f": {'; '.join(found)}"
        message = f"Flink's ConfigMap {flinks.name} resolves differently{differs}{details}"
        kind = "Warning"
        if memory_tuning_enabled(flinks.config) and all(d.startswith(str(TASKMANAGER)) for d in found):
            # On purpose (ADR 0007): said once, and never "fixed" (its TaskManager pods are sized to the ConfigMap).
            kind = "Normal"
            message = (
                "the operator's autoscaler tuned TaskManager memory (job.autoscaler.memory.tuning.enabled): "
                f"flinkmem sizes TaskManager pods to Flink's ConfigMap {flinks.name}, which they run, and leaves "
                f"the FlinkDeployment as it is. The ConfigMap resolves differently{differs}{details}"
            )
        await self.throttle.acquire()
        self.events.post(deployment.ref, kind, REASON_CONFIG_DIFFERS, message)

    # --- pods --------------------------------------------------------------------------------------

    def _seen(self, event_type: str, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        app = (meta.get("labels") or {}).get(APP_LABEL)
        if not isinstance(app, str):
            return
        key, uid = (str(meta.get("namespace") or ""), app), str(meta.get("uid"))
        if event_type != DELETED:
            self.pods_seen.setdefault(key, set()).add(uid)
        elif key in self.pods_seen:
            self.pods_seen[key].discard(uid)
            if not self.pods_seen[key]:
                del self.pods_seen[key]

    async def on_pod(self, event_type: str, body: Mapping[str, Any]) -> None:
        self._seen(event_type, body)
        if event_type == DELETED:
            # Forget what was reported for the pod, so the set stays as small as the live Flink pods.
            uid = str((body.get("metadata") or {}).get("uid"))
            self.drift_seen = {key for key in self.drift_seen if key[0] != uid}
            return
        try:
            await self.check_pod(body)
        except OwnerLookupError as exc:
            logger.warning("drift check skipped: %s", exc)

    async def check_cluster_pods(self, namespace: str, name: str, every_pod: bool = True) -> None:
        """Every Flink pod of a cluster, against its source: for sources that arrive after their pods, or
        change.

        The pod watch leaves out the pods flinkmem sized (`SIZED_LABEL`): they match the source they were
        sized from, so only a changed source (`every_pod`) lists them. Otherwise the list is made only when
        the watch has shown a pod of the cluster; a pod it shows later is checked as it comes, against the
        source cached by then (so a new FlinkDeployment, with no pods yet, costs no list).
        """
        if not every_pod and (namespace, name) not in self.pods_seen:
            return
        for pod in await self.api.list_pods(namespace, f"{APP_LABEL}={name}"):
            await self.check_pod(pod)

    async def check_pod(self, pod: Mapping[str, Any]) -> Drift | None:
        """The pod's drift from its source, reported once (and acted on); None when it matches."""
        settings = self.settings
        if not settings.pod_mutation:
            return None  # without pod sizing every Flink pod would "drift"; nothing is expected of them
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or not settings.scope.covers(meta.get("namespace")):
            return None
        opened = await open_pod(
            pod, self.cache, container_name=settings.container_name, resource_plural=settings.resource.plural
        )
        drift = pod_drift(pod, opened) if opened is not None else None
        if drift is not None:
            await self.report_drift(pod, drift)
        return drift

    async def report_drift(self, pod: Mapping[str, Any], drift: Drift) -> None:
        meta = pod.get("metadata") or {}
        seen = (str(meta.get("uid")), drift.differences)
        if seen in self.drift_seen:
            return
        self.drift_seen.add(seen)
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        self.metrics.count_drift(namespace)
        await self.throttle.acquire()
        self.events.post(pod, "Warning", REASON_DRIFT, drift.message)
        if self.evicts and namespace and name and await self.api.evict_pod(namespace, name):
            self.metrics.count_eviction(namespace)
            self.events.post(pod, "Normal", REASON_DRIFT_EVICTED, "Evicted so that it is recreated with flinkmem")


def register(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    """The controller's watches: FlinkDeployments, Flink's ConfigMaps, Flink's pods and blue/green deployments."""
    resource = controller.settings.resource

    @kopf.on.event(resource.group, resource.version, resource.plural, registry=registry)
    async def flinkdeployment_event(event: Mapping[str, Any], body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        annotation = await controller.on_flinkdeployment(str(event.get("type")), body)
        if annotation is not None:
            patch.metadata.annotations[RESOLVED_ANNOTATION] = annotation  # kopf writes it after the handler

    @kopf.on.event("", "v1", "configmaps", when=is_flink_configmap, registry=registry)
    async def configmap_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        await controller.on_configmap(str(event.get("type")), body)

    # The watch is narrowed to Flink's components in the API server (kopfsetup.POD_SELECTOR); the
    # filter here keeps the rest of that to Flink's pods and opted-in ones.
    @kopf.on.event(
        "",
        "v1",
        "pods",
        labels={COMPONENT_LABEL: kopf.PRESENT},
        when=lambda labels, **_: pod_role(labels) is not None,
        registry=registry,
    )
    async def pod_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        await controller.on_pod(str(event.get("type")), body)

    del flinkdeployment_event, configmap_event, pod_event
    bluegreen = controller.settings.bluegreen_resource
    if bluegreen is None:
        return

    @kopf.on.event(bluegreen.group, bluegreen.version, bluegreen.plural, registry=registry)
    async def bluegreen_event(event: Mapping[str, Any], body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        annotation = await controller.on_bluegreen(str(event.get("type")), body)
        if annotation is not None:
            patch.metadata.annotations[RESOLVED_ANNOTATION] = annotation

    del bluegreen_event
