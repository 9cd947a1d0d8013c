"""The kopf handlers: thin adapters between kopf's callbacks and flinkmem's plain functions."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf

from flinkmem.admission import memory_inputs, review_flinkdeployment
from flinkmem.cluster import Cluster, OwnerLookupError
from flinkmem.controller import options_that_differ, pod_drift, reconcile_deployment, source_differences
from flinkmem.podpatch import (
    RESOLVED_ANNOTATION,
    PodShapeError,
    apply_plan,
    main_container,
    plan_pod,
    pod_role,
)
from flinkmem.ratelimit import TokenBucket
from flinkmem.roles import FLINK_POD_TYPES, ROLES
from flinkmem.settings import MUTATE_ID, VALIDATE_ID, ValidationMode
from flinkmem.sources.flinkconfig import CONFIGMAP_PREFIX, ConfigMapError, from_flink_configmap
from flinkmem.sources.flinkdeployment import SpecError, from_flinkdeployment
from flinkmem.sources.model import FlinkSource, MainContainer
from flinkmem.sources.pods import source_for_pod
from flinkmem.validation import validate_role, warning_lines

__all__ = ["admission_handlers", "controller_handlers"]

logger = logging.getLogger("flinkmem.handlers")

# What the controller compares between a FlinkDeployment and Flink's ConfigMap of the same cluster.
_MEMORY_OPTION_PREFIXES = ("jobmanager.memory.", "taskmanager.memory.", "jobmanager.heap", "taskmanager.heap")


def _watched(cluster: Cluster, namespace: str | None) -> bool:
    namespaces = cluster.settings.namespaces
    return not namespaces or namespace in namespaces


def _event_target(pod: Mapping[str, Any], deployment: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Where an Event about a new pod can go: its FlinkDeployment, else the pod's owner (the pod has no uid yet)."""
    if deployment is not None:
        return deployment
    meta = pod.get("metadata") or {}
    refs = meta.get("ownerReferences")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, Mapping) and ref.get("uid") and ref.get("name"):
            return {
                "apiVersion": ref.get("apiVersion"),
                "kind": ref.get("kind"),
                "metadata": {"name": ref["name"], "namespace": meta.get("namespace"), "uid": ref["uid"]},
            }
    return None


def _register_login(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In-cluster service account, else $KUBECONFIG, as the Kubernetes client library finds them.
        return kopf.login_via_client(**kwargs)

    del login


def admission_handlers(registry: kopf.OperatorRegistry, cluster: Cluster) -> None:
    """The admission handlers: stateless, served by every replica."""
    settings = cluster.settings
    resource = settings.resource
    metrics = cluster.metrics
    background: set[asyncio.Task[None]] = set()
    _register_login(registry)

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
        role = pod_role(body.metadata.labels)
        if not settings.pod_mutation or role is None or not _watched(cluster, body.metadata.namespace):
            return
        try:
            found = main_container(body, settings.container_name)
        except PodShapeError as exc:
            await _fail_open(body, None, warnings, dryrun, f"{exc}", role.title)
            return
        if found is None:
            reason = f"the pod has no container named {settings.container_name}"
            await _fail_open(body, None, warnings, dryrun, reason, role.title)
            return
        located = await source_for_pod(
            body, role, found[1], cluster, container_name=settings.container_name, resource_plural=resource.plural
        )
        source = located.source
        if source is None:
            reason = located.problem or located.missing or "no configuration source"
            await _fail_open(body, located.deployment, warnings, dryrun, reason, role.title)
            return
        result = validate_role(source, role)
        metrics.count_resolution("pod", "valid" if result.valid else result.conflicts[0].code)
        if result.memory is None:
            await _fail_open(
                body,
                located.deployment,
                warnings,
                dryrun,
                f"{source.label} is invalid: {result.conflicts[0].message}",
                role.title,
            )
            return
        warnings.extend(line for n in source.notices for line in warning_lines(f"flinkmem: {n.message}"))
        if result.conflicts:
            # The memory itself resolved; the patch overrides what contradicts it (a -Xmx in the options).
            reason = "; ".join(c.message for c in result.conflicts)
            warnings.extend(warning_lines(f"flinkmem applied the derived memory over: {reason}"))
        plan = plan_pod(body, result, source, settings.container_name)
        if plan is not None and plan.changed:
            patch.fns.append(lambda raw: apply_plan(cast(dict[str, Any], raw), plan))

    async def _fail_open(
        body: kopf.Body,
        deployment: Mapping[str, Any] | None,
        warnings: list[str],
        dryrun: bool,
        reason: str,
        role: str,
    ) -> None:
        warnings.extend(warning_lines(f"flinkmem left this {role} pod unchanged: {reason}"))
        target = _event_target(body, deployment)
        if target is not None and not dryrun:
            # Admission tasks lack kopf's event-poster context; post directly, without delaying the answer.
            message = f"{role} pod left unchanged: {reason}"
            task = asyncio.create_task(cluster.post_event(target, "Warning", "MemoryNotApplied", message))
            background.add(task)
            task.add_done_callback(background.discard)

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


def controller_handlers(registry: kopf.OperatorRegistry, cluster: Cluster) -> None:
    """The reconciling handlers: annotations, Events and drift, run by one replica at a time."""
    settings = cluster.settings
    resource = settings.resource
    metrics = cluster.metrics
    drift_seen: set[tuple[str, tuple[str, ...]]] = set()
    # The last-seen FlinkDeployments and Flink ConfigMaps, by (namespace, cluster id): the sources of the
    # pods' drift checks (a miss falls back to a GET). Plain dicts, not kopf indices: kopf holds every
    # handler back while any new object is being indexed, which under a burst costs quadratic time.
    deployments: dict[tuple[str, str], Mapping[str, Any]] = {}
    configmaps: dict[tuple[str, str], Mapping[str, Any]] = {}
    differences_seen: dict[tuple[str, str], tuple[str, ...]] = {}
    throttle = TokenBucket(settings.controller_qps, settings.controller_burst)
    _register_login(registry)

    class _Cached:
        """sources.pods.SourceLookup over the controller's caches, falling back to the API server."""

        async def flinkdeployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
            return deployments.get((namespace, name)) or await cluster.get_deployment(namespace, name)

        async def configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
            key = (namespace, name.removeprefix(CONFIGMAP_PREFIX))
            return configmaps.get(key) or await cluster.get_configmap(namespace, name)

    lookup = _Cached()

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
            kopf.info(body, reason="MemoryDriftEvicted", message="Evicted so that it is recreated with flinkmem")

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
        deployment, configmap = deployments.get((namespace, name)), configmaps.get((namespace, name))
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
            deployments.pop(key, None)
            differences_seen.pop(key, None)
            return
        if not _watched(cluster, body.metadata.namespace):
            return
        previous = deployments.get(key)
        deployments[key] = copy.deepcopy(dict(body))
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

    @kopf.on.event(
        "",
        "v1",
        "configmaps",
        labels={"type": kopf.PRESENT},
        when=lambda name, **_: str(name or "").startswith(CONFIGMAP_PREFIX),
        registry=registry,
    )
    async def flink_configmap_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        namespace, name = str(body.metadata.namespace or ""), str(body.metadata.name or "")
        key = (namespace, name.removeprefix(CONFIGMAP_PREFIX))
        if event.get("type") == "DELETED":
            configmaps.pop(key, None)
            return
        if not _watched(cluster, namespace):
            return
        previous = configmaps.get(key)
        configmaps[key] = copy.deepcopy(dict(body))
        if previous is not None and previous.get("data") == body.get("data"):
            return
        try:
            if key in deployments:
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

    def flink_labelled(labels: Mapping[str, str]) -> bool:
        return labels.get("type") in FLINK_POD_TYPES and labels.get("component") in {r.key for r in ROLES}

    for role in ROLES:
        # Two watches per role, so that the API server can filter: the labels Flink puts on its pods, and
        # flinkmem's opt-in label (a label selector cannot say "one or the other").
        @kopf.on.event(
            "",
            "v1",
            "pods",
            id=f"{role.key}-pod-event",
            labels={"component": role.key, "type": lambda value, **_: value in FLINK_POD_TYPES},
            registry=registry,
        )
        async def flink_pod_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
            await pod_event(event, body)

        @kopf.on.event(
            "", "v1", "pods", id=f"{role.key}-opt-in-pod-event", labels={role.opt_in_label: "true"}, registry=registry
        )
        async def opted_in_pod_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
            if flink_labelled(body.metadata.labels):
                return  # already handled by the handler of Flink's own labels above
            await pod_event(event, body)

    del reconcile_flinkdeployment, flink_configmap_event
