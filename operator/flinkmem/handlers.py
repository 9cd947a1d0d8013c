"""The kopf handlers: thin adapters between kopf's callbacks and flinkmem's plain functions."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf

from flinkmem.admission import review_flinkdeployment
from flinkmem.cluster import Cluster, OwnerLookupError
from flinkmem.controller import pod_drift, reconcile_deployment
from flinkmem.podpatch import RESOLVED_ANNOTATION, apply_plan, is_jobmanager_pod, owner_deployment_name, plan_pod
from flinkmem.ratelimit import TokenBucket
from flinkmem.settings import MUTATE_ID, OPT_IN_LABEL, VALIDATE_ID, ValidationMode
from flinkmem.validation import validate_deployment, warning_lines

__all__ = ["admission_handlers", "controller_handlers"]

logger = logging.getLogger("flinkmem.handlers")


def _watched(cluster: Cluster, namespace: str | None) -> bool:
    namespaces = cluster.settings.namespaces
    return not namespaces or namespace in namespaces


def _event_target(pod: Mapping[str, Any], deployment: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Where an Event about a new pod can go: its FlinkDeployment, else the pod's owner (the pod has no uid yet)."""
    if deployment is not None:
        return deployment
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("uid") and ref.get("name"):
            return {
                "apiVersion": ref.get("apiVersion"),
                "kind": ref.get("kind"),
                "metadata": {"name": ref["name"], "namespace": meta.get("namespace"), "uid": ref["uid"]},
            }
    return None


async def _owner(cluster: Cluster, namespace: str | None, name: str | None) -> Mapping[str, Any] | None:
    """The FlinkDeployment a JobManager pod names in its `app` label, or None."""
    if not namespace or not name:
        return None
    return await cluster.get_deployment(namespace, name)


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
        labels = body.metadata.labels
        namespace = body.metadata.namespace
        if not settings.pod_mutation or not is_jobmanager_pod(labels) or not _watched(cluster, namespace):
            return
        name = owner_deployment_name(labels)
        deployment = await _owner(cluster, namespace, name)
        if deployment is None:
            reason = f"no {resource.plural} named {name!r} in namespace {namespace!r} (from the pod's app label)"
            await _fail_open(body, None, warnings, dryrun, reason)
            return
        validation = validate_deployment(deployment, settings.container_name)
        metrics.count_resolution("pod", "valid" if validation.valid else validation.conflicts[0].code)
        if validation.memory is None:
            await _fail_open(
                body, deployment, warnings, dryrun, f"FlinkDeployment {name} is invalid: {validation.reason}"
            )
            return
        if validation.conflicts:
            # The memory itself resolved; the patch overrides the conflicting template limit or -Xmx.
            warnings.extend(warning_lines(f"flinkmem applied the derived memory over: {validation.reason}"))
        plan = plan_pod(body, validation, settings.container_name)
        if plan is None:
            await _fail_open(
                body, deployment, warnings, dryrun, f"the pod has no container named {settings.container_name}"
            )
            return
        if plan.changed:
            patch.fns.append(lambda raw: apply_plan(cast(dict[str, Any], raw), plan))

    async def _fail_open(
        body: kopf.Body, deployment: Mapping[str, Any] | None, warnings: list[str], dryrun: bool, reason: str
    ) -> None:
        warnings.extend(warning_lines(f"flinkmem left this JobManager pod unchanged: {reason}"))
        target = _event_target(body, deployment)
        if target is not None and not dryrun:
            # Admission tasks lack kopf's event-poster context; post directly, without delaying the answer.
            message = f"JobManager pod left unchanged: {reason}"
            task = asyncio.create_task(cluster.post_event(target, "Warning", "MemoryNotApplied", message))
            background.add(task)
            task.add_done_callback(background.discard)

    @kopf.on.mutate("", "v1", "pods", id=MUTATE_ID, operations=["CREATE"], registry=registry)
    async def mutate_jobmanager_pod(
        body: kopf.Body, patch: kopf.Patch, warnings: list[str], dryrun: bool, **_: Any
    ) -> None:
        # Fail open: a pod is never refused because flinkmem could not size it.
        try:
            await mutate(body, patch, warnings, dryrun)
        except OwnerLookupError as exc:
            logger.warning("JobManager pod admitted unchanged: %s", exc)
            warnings.extend(warning_lines(f"flinkmem left this JobManager pod unchanged: {exc}"))
        except Exception:
            logger.exception("sizing a JobManager pod failed; admitting it unchanged")
            warnings.append("flinkmem left this JobManager pod unchanged: internal error (see flinkmem logs)")

    del validate_flinkdeployment, mutate_jobmanager_pod


def controller_handlers(registry: kopf.OperatorRegistry, cluster: Cluster) -> None:
    """The reconciling handlers: annotations, Events and drift, run by one replica at a time."""
    settings = cluster.settings
    resource = settings.resource
    metrics = cluster.metrics
    drift_seen: set[tuple[str, tuple[str, ...]]] = set()
    # The last-seen FlinkDeployments, for the drift check of their pods (a miss falls back to a GET).
    # A plain dict, not a kopf index: kopf holds every handler back while any new object is being
    # indexed, which under a burst of creations costs time quadratic in the burst.
    deployments: dict[tuple[str | None, str | None], Mapping[str, Any]] = {}
    throttle = TokenBucket(settings.controller_qps, settings.controller_burst)
    _register_login(registry)

    @kopf.on.event(resource.group, resource.version, resource.plural, registry=registry)
    async def reconcile_flinkdeployment(event: Mapping[str, Any], body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        key = (body.metadata.namespace, body.metadata.name)
        if event.get("type") == "DELETED" or body.metadata.get("deletionTimestamp"):
            deployments.pop(key, None)
            return
        if not _watched(cluster, body.metadata.namespace):
            return
        deployments[key] = copy.deepcopy(dict(body))
        result = reconcile_deployment(body, settings.container_name)
        if not result.changed:
            return
        rule = "valid" if result.validation.valid else result.validation.conflicts[0].code
        metrics.count_resolution("controller", rule)
        await throttle.acquire()  # kopf writes the patch and the Event once the handler returns
        patch.metadata.annotations[RESOLVED_ANNOTATION] = result.annotation
        kopf.event(body, type=result.event_type, reason=result.reason, message=result.message)

    async def check_pod(event: Mapping[str, Any], body: kopf.Body) -> None:
        meta = body.metadata
        if event.get("type") == "DELETED":
            # Forget what was reported for the pod, so the set stays as small as the live JobManagers.
            for key in [k for k in drift_seen if k[0] == str(meta.uid)]:
                drift_seen.discard(key)
            return
        if meta.get("deletionTimestamp") or not is_jobmanager_pod(meta.labels):
            return
        if not settings.pod_mutation:
            return  # without pod sizing every JobManager pod would "drift"; nothing is expected of them
        if not _watched(cluster, meta.namespace):
            return
        owner = owner_deployment_name(meta.labels)
        deployment = deployments.get((meta.namespace, owner)) or await _owner(cluster, meta.namespace, owner)
        if deployment is None:
            return
        drift = pod_drift(body, deployment, settings.container_name)
        if drift is None:
            return
        key = (str(meta.uid), drift.differences)
        if key in drift_seen:
            return
        drift_seen.add(key)
        metrics.count_drift(meta.namespace or "")
        await throttle.acquire()
        kopf.warn(body, reason="MemoryDrift", message=drift.message)
        evict = settings.evict_drifted and settings.validation_mode is ValidationMode.ENFORCE
        if evict and meta.namespace and meta.name and await cluster.evict_pod(meta.namespace, meta.name):
            metrics.count_eviction(meta.namespace or "")
            kopf.info(body, reason="MemoryDriftEvicted", message="Evicted so that it is recreated with flinkmem")

    @kopf.on.event("", "v1", "pods", labels={"component": "jobmanager"}, registry=registry)
    async def jobmanager_pod_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        try:
            await check_pod(event, body)
        except OwnerLookupError as exc:
            logger.warning("drift check skipped: %s", exc)

    @kopf.on.event("", "v1", "pods", labels={OPT_IN_LABEL: "true"}, registry=registry)
    async def opted_in_pod_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        if body.metadata.labels.get("component") == "jobmanager":
            return  # already handled by the label-selected handler above
        try:
            await check_pod(event, body)
        except OwnerLookupError as exc:
            logger.warning("drift check skipped: %s", exc)

    del reconcile_flinkdeployment
    del jobmanager_pod_event, opted_in_pod_event
