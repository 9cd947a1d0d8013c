"""AdmissionReviews answered straight from flinkmem's decisions, for the two webhooks on the hot path.

kopf stays the framework: it runs the operator, the webhook server's lifecycle, login, the
controller, and it holds the same two webhooks as kopf handlers (`handlers.py`), which
`--admission-engine kopf` serves through its admission engine. That engine wraps every review in
views, a diff, a cause and a memo, dispatches through its handler machinery and, for a pod, deep-copies
the body and diffs it against the patched copy to produce a JSON patch: measured at 0.16–0.29 ms per
review and 0.24–0.41 ms more per pod (benchmarks/review_parts.py), several times flinkmem's own
decision. Here the review goes to the same plain functions (`admission.py`, `podadmission.py`) and
the pod's patch is built from its plan.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

from flinkmem.admission import review_flinkdeployment
from flinkmem.cluster import Cluster, OwnerLookupError
from flinkmem.podadmission import admit_pod, event_target
from flinkmem.refusals import RefusalLog
from flinkmem.settings import MUTATE_ID, VALIDATE_ID
from flinkmem.sources.pods import SourceLookup
from flinkmem.validation import warning_lines

__all__ = ["DirectAdmission"]

logger = logging.getLogger("flinkmem.reviews")


def _answer(uid: str, allowed: bool, **fields: Any) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    response.update({k: v for k, v in fields.items() if v})
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


class DirectAdmission:
    """Answers `validate-flinkdeployment` and `mutate-flink-pod` reviews; anything else is kopf's."""

    def __init__(self, cluster: Cluster, lookup: SourceLookup, refusals: RefusalLog) -> None:
        self.cluster = cluster
        self.lookup = lookup
        self.refusals = refusals
        self.background: set[asyncio.Task[None]] = set()

    def _post_event(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        # Never delays the answer: the Event is posted in the background.
        task = asyncio.create_task(self.cluster.post_event(target, type_, reason, message))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def __call__(self, webhook: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
        request = data["request"]
        resource = request["resource"]
        settings = self.cluster.settings
        if webhook == VALIDATE_ID:
            wanted = settings.resource
            if (resource.get("group"), resource.get("version"), resource.get("resource")) != (
                wanted.group,
                wanted.version,
                wanted.plural,
            ):
                return None
            return self._validate(request)
        if webhook == MUTATE_ID:
            if (resource.get("group"), resource.get("resource")) != ("", "pods"):
                return None
            return await self._mutate(request)
        return None

    def _watched(self, namespace: object) -> bool:
        namespaces = self.cluster.settings.namespaces
        return not namespaces or namespace in namespaces

    def _validate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        settings = self.cluster.settings
        uid = request["uid"]
        new, old = request.get("object"), request.get("oldObject")
        namespace = (new or old or {}).get("metadata", {}).get("namespace") or request.get("namespace")
        if not self._watched(namespace):
            return _answer(uid, True)
        decision = review_flinkdeployment(
            request["operation"],
            new,
            old,
            settings.validation_mode,
            settings.container_name,
            actor=request["userInfo"].get("username"),
            own_identity=settings.service_account,
        )
        validation = decision.validation
        if validation is not None:
            rule = "valid" if validation.valid else validation.conflicts[0].code
            self.cluster.metrics.count_resolution("webhook", rule)
        if decision.conflicts and decision.outcome in ("audited", "warned", "denied"):
            meta = (new or {}).get("metadata") or {}
            name = str(meta.get("name") or meta.get("generateName") or "")
            key = (str(namespace or ""), name, decision.conflicts[0].code)
            reasons = "; ".join(c.message for c in decision.conflicts)
            told = self.refusals.refused(
                key, decision.message or f"{decision.outcome} FlinkDeployment {name}: {reasons}"
            )
            # An UPDATE's object exists, so a refusal can also be an Event on it (one per interval).
            existing = request["operation"] == "UPDATE" and bool(meta.get("uid")) and not request.get("dryRun")
            if told and not decision.allowed and existing:
                self._post_event(new or {}, "Warning", "MemoryRefused", decision.message)
        if decision.allowed:
            return _answer(uid, True, warnings=list(decision.warnings))
        status = {"code": decision.code, "message": decision.message}
        return _answer(uid, False, status=status, warnings=list(decision.warnings))

    async def _mutate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        settings = self.cluster.settings
        uid = request["uid"]
        pod = request.get("object")
        if request["operation"] != "CREATE" or not isinstance(pod, Mapping) or not settings.pod_mutation:
            return _answer(uid, True)
        if not self._watched((pod.get("metadata") or {}).get("namespace")):
            return _answer(uid, True)
        try:
            admission = await admit_pod(
                pod, self.lookup, container_name=settings.container_name, resource_plural=settings.resource.plural
            )
        except OwnerLookupError as exc:
            logger.warning("Flink pod admitted unchanged: %s", exc)
            return _answer(uid, True, warnings=warning_lines(f"flinkmem left this pod unchanged: {exc}"))
        if admission is None:
            return _answer(uid, True)
        if admission.result is not None:
            self.cluster.metrics.count_resolution("pod", admission.result)
        if admission.unchanged is not None:
            target = event_target(pod, admission.deployment)
            if target is not None and not request.get("dryRun"):
                message = f"{admission.role} pod left unchanged: {admission.unchanged}"
                self._post_event(target, "Warning", "MemoryNotApplied", message)
            return _answer(uid, True, warnings=list(admission.warnings))
        plan = admission.plan
        if plan is None or not plan.changed:
            return _answer(uid, True, warnings=list(admission.warnings))
        patch = base64.b64encode(json.dumps(plan.json_patch(pod), separators=(",", ":")).encode()).decode()
        return _answer(uid, True, patch=patch, patchType="JSONPatch", warnings=list(admission.warnings))
