"""The kopf handlers: thin adapters between kopf's callbacks and flinkmem's plain functions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf

from flinkmem.admission import memory_inputs, review_flinkdeployment
from flinkmem.cluster import Cluster, OwnerLookupError
from flinkmem.controller import options_that_differ, pod_drift, reconcile_deployment, source_differences
from flinkmem.podadmission import admit_pod, event_target
from flinkmem.podpatch import RESOLVED_ANNOTATION, PodShapeError, apply_plan, main_container, pod_role
from flinkmem.ratelimit import TokenBucket
from flinkmem.roles import FLINK_POD_TYPES, ROLES
from flinkmem.settings import MUTATE_ID, VALIDATE_ID, ValidationMode
from flinkmem.sourcecache import SourceCache
from flinkmem.sources.flinkconfig import CONFIGMAP_PREFIX, ConfigMapError, from_flink_configmap
from flinkmem.sources.flinkdeployment import SpecError, from_flinkdeployment
from flinkmem.sources.model import FlinkSource, MainContainer
from flinkmem.sources.pods import source_for_pod
from flinkmem.validation import warning_lines

__all__ = ["admission_handlers", "controller_handlers", "watch_selectors"]

logger = logging.getLogger("flinkmem.handlers")

# What the controller compares between a FlinkDeployment and Flink's ConfigMap of the same cluster.
_MEMORY_OPTION_PREFIXES = ("jobmanager.memory.", "taskmanager.memory.", "jobmanager.heap", "taskmanager.heap")
# Filtered in the API server, so that other pods and ConfigMaps never reach flinkmem's watches: every pod
# flinkmem sizes carries one of these components (Flink's own label, or next to the opt-in label), and
# Flink labels its ConfigMaps with its type.
POD_SELECTOR = f"component in ({','.join(role.key for role in ROLES)})"
CONFIGMAP_SELECTOR = f"type in ({','.join(FLINK_POD_TYPES)})"


def watch_selectors(settings: kopf.OperatorSettings) -> None:
    """Narrows kopf's pod and ConfigMap watches to Flink's objects, in the API server."""
    settings.watching.label_selectors["v1", "pods"] = POD_SELECTOR
    settings.watching.label_selectors["v1", "configmaps"] = CONFIGMAP_SELECTOR


def _watched(cluster: Cluster, namespace: str | None) -> bool:
    namespaces = cluster.settings.namespaces
    return not namespaces or namespace in namespaces


def _is_flink_configmap(name: str | None, **_: Any) -> bool:
    return str(name or "").startswith(CONFIGMAP_PREFIX)


def _register_login(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In-cluster service account, else $KUBECONFIG, as the Kubernetes client library finds them.
        return kopf.login_via_client(**kwargs)

    del login


def _feed_cache(registry: kopf.OperatorRegistry, cluster: Cluster, cache: SourceCache, prefix: str) -> None:
    """Watches that keep `cache` current in a process that only needs the objects (a webhook replica)."""
    resource = cluster.settings.resource

    @kopf.on.event(resource.group, resource.version, resource.plural, id=f"{prefix}-deployments", registry=registry)
    def cache_flinkdeployment(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        if event.get("type") == "DELETED":
            cache.forget_deployment(str(body.metadata.namespace or ""), str(body.metadata.name or ""))
        else:
            cache.remember_deployment(body)

    @kopf.on.event("", "v1", "configmaps", id=f"{prefix}-configmaps", when=_is_flink_configmap, registry=registry)
    def cache_configmap(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        name = str(body.metadata.name or "").removeprefix(CONFIGMAP_PREFIX)
        if event.get("type") == "DELETED":
            cache.forget_configmap(str(body.metadata.namespace or ""), name)
        else:
            cache.remember_configmap(body)

    del cache_flinkdeployment, cache_configmap


def admission_handlers(registry: kopf.OperatorRegistry, cluster: Cluster, cache: SourceCache) -> None:
    """The admission handlers (served by kopf's engine with `--admission-engine kopf`), and the watches
    that keep this replica's source cache current. Stateless but for that cache; every replica serves."""
    settings = cluster.settings
    resource = settings.resource
    metrics = cluster.metrics
    background: set[asyncio.Task[None]] = set()
    _register_login(registry)
    _feed_cache(registry, cluster, cache, "webhook-cache")

    # kopf's handler protocol names only some keyword arguments; `old` and `operation` come in **kwargs.
    @kopf.on.validate(  # type: ignore[arg-type]
        resource.group,
        resource.version,
        resource.plural,
        id=VALIDATE_ID,
        operations=["CREATE", "UPDATE"],
        registry=registry,
    )
    async def validate_flinkdeployment(
        body: kopf.Body,
        old: kopf.Body | None,
        operation: str,
        warnings: list[str],
        userinfo: Mapping[str, Any],
        **_: Any,
    ) -> None:
        if not _watched(cluster, body.metadata.namespace):
            return
        decision = review_flinkdeployment(
            operation,
            body,
            old,
            settings.validation_mode,
            settings.container_name,
            actor=userinfo.get("username"),
            own_identity=settings.service_account,
        )
        if decision.validation is not None:
            rule = "valid" if decision.validation.valid else decision.validation.conflicts[0].code
            metrics.count_resolution("webhook", rule)
        if decision.conflicts and decision.outcome in ("audited", "warned"):
            logger.warning(
                "%s FlinkDeployment %s: %s",
                decision.outcome,
                body.metadata.name,
                decision.message or "; ".join(c.message for c in decision.conflicts),
            )
        warnings.extend(decision.warnings)
        if not decision.allowed:
            raise kopf.AdmissionError(decision.message, code=decision.code)

    async def mutate(body: kopf.Body, patch: kopf.Patch, warnings: list[str], dryrun: bool) -> None:
        if not settings.pod_mutation or not _watched(cluster, body.metadata.namespace):
            return
        admission = await admit_pod(
            body, cache, container_name=settings.container_name, resource_plural=resource.plural
        )
        if admission is None:
            return
        if admission.result is not None:
            metrics.count_resolution("pod", admission.result)
        warnings.extend(admission.warnings)
        target = event_target(body, admission.deployment)
        if admission.unchanged is not None and target is not None and not dryrun:
            # Admission tasks lack kopf's event-poster context; post directly, without delaying the answer.
            message = f"{admission.role} pod left unchanged: {admission.unchanged}"
            task = asyncio.create_task(cluster.post_event(target, "Warning", "MemoryNotApplied", message))
            background.add(task)
            task.add_done_callback(background.discard)
        plan = admission.plan
        if plan is not None and plan.changed:
            patch.fns.append(lambda raw: apply_plan(cast(dict[str, Any], raw), plan))

    @kopf.on.mutate("", "v1", "pods", id=MUTATE_ID, operations=["CREATE"], registry=registry)
    async def mutate_flink_pod(body: kopf.Body, patch: kopf.Patch, warnings: list[str], dryrun: bool, **_: Any) -> None:
        # Fail open: a pod is never refused because flinkmem could not size it.
        try:
            await mutate(body, patch, warnings, dryrun)
        except OwnerLookupError as exc:
            logger.warning("Flink pod admitted unchanged: %s", exc)
            warnings.extend(warning_lines(f"flinkmem left this pod unchanged: {exc}"))
        except Exception:
            logger.exception("sizing a Flink pod failed; admitting it unchanged")
            warnings.append("flinkmem left this pod unchanged: internal error (see flinkmem logs)")

    del validate_flinkdeployment, mutate_flink_pod


def controller_handlers(registry: kopf.OperatorRegistry, cluster: Cluster, cache: SourceCache) -> None:
    """The reconciling handlers: annotations, Events and drift, run by one replica at a time."""
    settings = cluster.settings
    resource = settings.resource
    metrics = cluster.metrics
    drift_seen: set[tuple[str, tuple[str, ...]]] = set()
    # The FlinkDeployments and Flink's ConfigMaps, as the watches below last delivered them: the sources of
    # the pods' drift checks. Plain dicts, not kopf indices: kopf holds every handler back while any new
    # object is being indexed, which under a burst of creations costs time quadratic in the burst.
    differences_seen: dict[tuple[str, str], tuple[str, ...]] = {}
    throttle = TokenBucket(settings.controller_qps, settings.controller_burst)
    _register_login(registry)
    lookup = cache

    async def report_drift(pod: Mapping[str, Any], source: FlinkSource) -> None:
        meta = pod.get("metadata") or {}
        drift = pod_drift(pod, source, settings.container_name)
        if drift is None:
            return
        key = (str(meta.get("uid")), drift.differences)
        if key in drift_seen:
            return
        drift_seen.add(key)
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        metrics.count_drift(namespace)
        await throttle.acquire()
        body = kopf.Body(cast(kopf.RawBody, pod))
        kopf.warn(body, reason="MemoryDrift", message=drift.message)
        evict = settings.evict_drifted and settings.validation_mode is ValidationMode.ENFORCE
        if evict and namespace and name and await cluster.evict_pod(namespace, name):
            metrics.count_eviction(namespace)
            # Posted directly: kopf's poster only takes warnings (settings.posting.level).
            message = "Evicted so that it is recreated with flinkmem"
            await cluster.post_event(pod, "Normal", "MemoryDriftEvicted", message)

    async def check_pod(pod: Mapping[str, Any]) -> None:
        if not settings.pod_mutation:
            return  # without pod sizing every Flink pod would "drift"; nothing is expected of them
        meta = pod.get("metadata") or {}
        role = pod_role(meta.get("labels") or {})
        if role is None or meta.get("deletionTimestamp") or not _watched(cluster, meta.get("namespace")):
            return
        try:
            found = main_container(pod, settings.container_name)
        except PodShapeError:
            return
        if found is None:
            return
        located = await source_for_pod(
            pod, role, found[1], lookup, container_name=settings.container_name, resource_plural=resource.plural
        )
        if located.source is not None:
            await report_drift(pod, located.source)

    async def check_cluster_pods(namespace: str, name: str) -> None:
        """Every Flink pod of a cluster, against its source: for sources that arrive after their pods."""
        for pod in await cluster.list_pods(namespace, f"app={name}"):
            await check_pod(pod)

    async def compare_with_flink(namespace: str, name: str) -> None:
        """A FlinkDeployment and Flink's own ConfigMap of the same cluster, resolved side by side."""
        deployment, configmap = cache.cached_deployment(namespace, name), cache.cached_configmap(namespace, name)
        if deployment is None or configmap is None:
            return
        try:
            ours = from_flinkdeployment(deployment, settings.container_name)
            flinks = from_flink_configmap(
                configmap,
                mode=ours.mode,
                pod_annotations={},
                image=None,
                role_key=ROLES[0].key,
                container=MainContainer(),
                version=ours.version,
            )
        except (SpecError, ConfigMapError):
            return
        found = source_differences(ours, flinks)
        if differences_seen.get((namespace, name)) == found:
            return
        differences_seen[(namespace, name)] = found
        if not found:
            return
        options = options_that_differ(ours, flinks, _MEMORY_OPTION_PREFIXES)
        message = f"Flink's ConfigMap {flinks.name} resolves differently: {'; '.join(found)}"
        if options:
            message += f" (options that differ: {', '.join(options)})"
        await throttle.acquire()
        kopf.warn(kopf.Body(cast(kopf.RawBody, deployment)), reason="MemoryConfigDiffers", message=message)

    @kopf.on.event(resource.group, resource.version, resource.plural, registry=registry)
    async def reconcile_flinkdeployment(event: Mapping[str, Any], body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        key = (str(body.metadata.namespace or ""), str(body.metadata.name or ""))
        if event.get("type") == "DELETED" or body.metadata.get("deletionTimestamp"):
            cache.forget_deployment(*key)
            differences_seen.pop(key, None)
            return
        if not _watched(cluster, body.metadata.namespace):
            return
        previous = cache.remember_deployment(body)
        result = reconcile_deployment(body, settings.container_name)
        if result.changed:
            rule = "valid" if result.validation.valid else result.validation.conflicts[0].code
            metrics.count_resolution("controller", rule)
            await throttle.acquire()  # kopf writes the patch and the Event once the handler returns
            patch.metadata.annotations[RESOLVED_ANNOTATION] = result.annotation
            kopf.event(body, type=result.event_type, reason=result.reason, message=result.message)
        # Pods admitted before this FlinkDeployment existed, or before its memory changed, were sized
        # from something else (or not at all).
        if previous is None or memory_inputs(previous) != memory_inputs(body):
            try:
                await check_cluster_pods(*key)
                await compare_with_flink(*key)
            except OwnerLookupError as exc:
                logger.warning("checking the pods of %s/%s skipped: %s", key[0], key[1], exc)

    @kopf.on.event("", "v1", "configmaps", when=_is_flink_configmap, registry=registry)
    async def flink_configmap_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        namespace, name = str(body.metadata.namespace or ""), str(body.metadata.name or "")
        key = (namespace, name.removeprefix(CONFIGMAP_PREFIX))
        if event.get("type") == "DELETED":
            cache.forget_configmap(*key)
            return
        if not _watched(cluster, namespace):
            return
        previous = cache.remember_configmap(body)
        if previous is not None and previous.get("data") == body.get("data"):
            return
        try:
            if cache.cached_deployment(*key) is not None:
                await compare_with_flink(*key)
            else:
                # Flink's client writes this ConfigMap after the JobManager Deployment, so its first pod
                # was usually admitted before there was anything to size it from.
                await check_cluster_pods(*key)
        except OwnerLookupError as exc:
            logger.warning("checking the pods of cluster %s/%s skipped: %s", key[0], key[1], exc)

    async def pod_event(event: Mapping[str, Any], body: kopf.Body) -> None:
        meta = body.metadata
        if event.get("type") == "DELETED":
            # Forget what was reported for the pod, so the set stays as small as the live Flink pods.
            for key in [k for k in drift_seen if k[0] == str(meta.uid)]:
                drift_seen.discard(key)
            return
        try:
            await check_pod(body)
        except OwnerLookupError as exc:
            logger.warning("drift check skipped: %s", exc)

    # The watch itself is narrowed to Flink's components in the API server (watch_selectors); the filter
    # here keeps the rest of that to Flink's pods and opted-in ones.
    @kopf.on.event(
        "",
        "v1",
        "pods",
        labels={"component": kopf.PRESENT},
        when=lambda labels, **_: pod_role(labels) is not None,
        registry=registry,
    )
    async def flink_pod_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        await pod_event(event, body)

    del reconcile_flinkdeployment, flink_configmap_event, flink_pod_event
