"""The admission service: every review is answered here, once, whichever transport carried it.

After a review is parsed (`review.check_review`), everything else happens in `AdmissionService`:
which webhook and resource it is for, namespace scope, the decision (`decisions.deployment` for
FlinkDeployments and, as the FlinkDeployment their template deploys, FlinkBlueGreenDeployments;
`decisions.pod`), the resolution metric, refusal logging, Events, and the failure rules. FlinkDeployments
and blue/green deployments fail closed (a review flinkmem cannot answer is refused, so nothing
unchecked is admitted); pods fail open (a pod is never refused because flinkmem could not size it; the
controller reports what was missed). The transports (`direct`, `kopfpath`) only translate the `Answer`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from flinkmem.conventions import (
    MUTATE_ID,
    REASON_NOT_APPLIED,
    REASON_REFUSED,
    RECORD_ID,
    RESOLVED_ANNOTATION,
    SIZED_LABEL,
    VALIDATE_BLUEGREEN_ID,
    VALIDATE_ID,
)
from flinkmem.decisions.annotations import memory_annotation
from flinkmem.decisions.bluegreen import BLUEGREEN
from flinkmem.decisions.deployment import FLINKDEPLOYMENT, Subject, review_flinkdeployment
from flinkmem.decisions.pod import admit_pod, event_target
from flinkmem.decisions.podplan import PodPlan
from flinkmem.decisions.reconcile import deployment_record
from flinkmem.decisions.redaction import redact
from flinkmem.decisions.validation import Validation, validate_deployment, warning_lines
from flinkmem.runtime.admission.review import AdmissionRequest, ReviewError
from flinkmem.runtime.cluster import OwnerLookupError
from flinkmem.runtime.events import EventPoster
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.refusals import RefusalLog
from flinkmem.runtime.settings import ResourceRef, Settings
from flinkmem.sources.names import is_dns1123_label
from flinkmem.sources.pods import SourceLookup

__all__ = ["AdmissionService", "Answer"]

logger = logging.getLogger("flinkmem.admission")


@dataclass(frozen=True)
class Answer:
    """What to tell the API server: allowed or not (with an HTTP-style code and message), the kubectl
    warnings, for a pod the plan its patch is built from (or the labels it must lose), and for a
    FlinkDeployment the annotations to write (key, value) in the same write as the object."""

    allowed: bool
    code: int = 200
    message: str = ""
    warnings: tuple[str, ...] = ()
    plan: PodPlan | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    labels_removed: tuple[str, ...] = ()


def _name_problem(request: AdmissionRequest) -> str | None:
    """A namespace the API server would never send, or an object claiming another namespace than its review."""
    if request.namespace is not None and not is_dns1123_label(request.namespace):
        return "request.namespace is not a valid namespace name"
    for path, obj in (("object", request.object), ("oldObject", request.old_object)):
        metadata = (obj or {}).get("metadata") or {}
        own = metadata.get("namespace")
        if own is not None and own != request.namespace:
            return f"{path}.metadata.namespace {own!r} is not the namespace of the request"
    return None


def _annotation(obj: Mapping[str, Any] | None) -> str | None:
    value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(RESOLVED_ANNOTATION)
    return value if isinstance(value, str) else None


def _name_of(obj: Mapping[str, Any] | None) -> str:
    meta = (obj or {}).get("metadata") or {}
    return str(meta.get("name") or meta.get("generateName") or "")


class AdmissionService:
    def __init__(
        self,
        settings: Settings,
        lookup: SourceLookup,
        metrics: Metrics,
        events: EventPoster,
        refusals: RefusalLog,
    ) -> None:
        self.settings = settings
        self.lookup = lookup
        self.metrics = metrics
        self.events = events
        self.refusals = refusals

    # --- before either transport -------------------------------------------------------------------

    def screen(self, request: AdmissionRequest) -> Answer | None:
        """Checks that the review is one this webhook takes; an answer when its object cannot be read.

        Raises ReviewError (404 for an unknown webhook, 400 for a resource it does not review).
        """
        validating = self._validating()
        if request.webhook in validating:
            wanted = validating[request.webhook]
            key = request.resource
            if (key.group, key.version, key.plural) != (wanted.group, wanted.version, wanted.plural):
                raise ReviewError(f"{request.webhook} reviews {wanted}, not {key.plural}.{key.version}.{key.group}")
        elif request.webhook == MUTATE_ID:
            if (request.resource.group, request.resource.plural) != ("", "pods"):
                raise ReviewError(f"{MUTATE_ID} reviews pods, not {request.resource.plural}")
        elif request.webhook == RECORD_ID:
            wanted, key = self.settings.resource, request.resource
            if (key.group, key.version, key.plural) != (wanted.group, wanted.version, wanted.plural):
                raise ReviewError(f"{RECORD_ID} records {wanted}, not {key.plural}.{key.version}.{key.group}")
        else:
            served = ", ".join([*validating, MUTATE_ID, RECORD_ID])
            raise ReviewError(f"no webhook {request.webhook!r}; flinkmem serves {served}", 404)
        problem = request.metadata_problem or _name_problem(request)
        if problem is not None:
            return self.failure(request.webhook, f"{problem}.", code=422)
        return None

    def _validating(self) -> dict[str, ResourceRef]:
        """The validating webhooks served, by id, with the resource each reviews."""
        served = {VALIDATE_ID: self.settings.resource}
        if self.settings.bluegreen_resource is not None:
            served[VALIDATE_BLUEGREEN_ID] = self.settings.bluegreen_resource
        return served

    def failure(self, webhook: str, message: str, code: int = 500) -> Answer:
        """The answer when a review cannot be decided: pods are admitted unchanged, FlinkDeployments refused."""
        if webhook == MUTATE_ID:
            return Answer(True, warnings=(redact(f"flinkmem: pod left unchanged: {message}"),))
        if webhook == RECORD_ID:
            return Answer(True)  # the validating webhook decides; the controller writes what was not recorded
        prefix = "flinkmem failed" if code >= 500 else "flinkmem refused this object"
        return Answer(False, code, redact(f"{prefix}: {message}"))

    # --- the decision ------------------------------------------------------------------------------

    async def answer(self, request: AdmissionRequest) -> Answer:
        """The answer to a screened review, its messages redacted; never raises."""
        try:
            if request.webhook == VALIDATE_ID:
                answer = self._validate(request, FLINKDEPLOYMENT)
            elif request.webhook == VALIDATE_BLUEGREEN_ID:
                answer = self._validate(request, BLUEGREEN)
            elif request.webhook == RECORD_ID:
                answer = self._record(request)
            else:
                answer = await self._mutate(request)
        except Exception as exc:  # an answer is owed for anything; failurePolicy must not decide
            logger.exception("answering a %s review failed", request.webhook)
            answer = self.failure(request.webhook, f"internal error {type(exc).__name__} (see flinkmem logs)")
        message = redact(answer.message)
        warnings = tuple(redact(w) for w in answer.warnings)
        if message == answer.message and warnings == answer.warnings:
            return answer
        return replace(answer, message=message, warnings=warnings)

    def _validate(self, request: AdmissionRequest, subject: Subject) -> Answer:
        settings = self.settings
        if not settings.scope.covers(request.namespace):
            return Answer(True)
        new = request.object
        decision = review_flinkdeployment(
            request.operation,
            new,
            request.old_object,
            settings.validation_mode,
            settings.container_name,
            actor=request.username,
            own_identity=settings.service_account,
            subject=subject,
        )
        validation = decision.validation
        if validation is not None:
            self.metrics.count_resolution("webhook", "valid" if validation.valid else validation.conflicts[0].code)
        if decision.conflicts and decision.outcome.reports_conflict:
            name = _name_of(new)
            key = (str(request.namespace or ""), name, decision.conflicts[0].code)
            reasons = "; ".join(c.message for c in decision.conflicts)
            told = self.refusals.refused(
                key, redact(decision.message or f"{decision.outcome.value} {subject.kind} {name}: {reasons}")
            )
            # An UPDATE's object exists, so a refusal can also be an Event on it (one per interval).
            meta = (new or {}).get("metadata") or {}
            existing = request.operation == "UPDATE" and bool(meta.get("uid")) and not request.dry_run
            if told and not decision.allowed and existing and new is not None:
                self.events.post(new, "Warning", REASON_REFUSED, decision.message)
        if decision.allowed and validation is not None and subject is FLINKDEPLOYMENT and new is not None:
            self._tell_recorded(request, new, validation)
        if decision.allowed:
            return Answer(True, warnings=decision.warnings)
        return Answer(False, decision.code, decision.message, decision.warnings)

    def _record(self, request: AdmissionRequest) -> Answer:
        """The resolved-memory annotation, written by the API server with the object itself (no PATCH later).

        Never refuses (the validating webhook does); the record is what the controller would write.
        """
        new = request.object
        if request.operation not in ("CREATE", "UPDATE") or not isinstance(new, Mapping):
            return Answer(True)
        if not self.settings.scope.covers(request.namespace):
            return Answer(True)
        annotation = memory_annotation(validate_deployment(new, self.settings.container_name))
        if _annotation(new) == annotation:
            return Answer(True)
        return Answer(True, annotations=((RESOLVED_ANNOTATION, annotation),))

    def _tell_recorded(self, request: AdmissionRequest, new: Mapping[str, Any], validation: Validation) -> None:
        """The Event of a record admission wrote (`_record`): posted here, where the object has its uid.

        Only when the object carries the record this validation makes and the stored one did not, as the
        controller posts it when it writes the record itself; never on a dry run.
        """
        if request.dry_run or not ((new.get("metadata") or {}).get("uid")):
            return
        annotation, event_type, reason, message = deployment_record(validation)
        if _annotation(new) != annotation or _annotation(request.old_object) == annotation:
            return
        self.events.post(new, event_type, reason, message)

    async def _mutate(self, request: AdmissionRequest) -> Answer:
        settings = self.settings
        pod = request.object
        if request.operation != "CREATE" or not isinstance(pod, Mapping) or not settings.pod_mutation:
            return Answer(True)
        if not settings.scope.covers(request.namespace):
            return Answer(True)
        try:
            admission = await admit_pod(
                pod, self.lookup, container_name=settings.container_name, resource_plural=settings.resource.plural
            )
        except OwnerLookupError as exc:
            logger.warning("Flink pod admitted unchanged: %s", exc)
            return Answer(True, warnings=tuple(warning_lines(f"flinkmem left this pod unchanged: {exc}")))
        if admission is None:
            return Answer(True)
        if admission.result is not None:
            self.metrics.count_resolution("pod", admission.result)
        if admission.unchanged is not None:
            target = event_target(pod, admission.deployment)
            if target is not None and not request.dry_run:
                message = f"{admission.role} pod left unchanged: {admission.unchanged}"
                self.events.post(target, "Warning", REASON_NOT_APPLIED, message)
            # A sized label copied from another pod would keep this one from the controller's drift check.
            stale = (SIZED_LABEL,) if SIZED_LABEL in ((pod.get("metadata") or {}).get("labels") or {}) else ()
            return Answer(True, warnings=admission.warnings, labels_removed=stale)
        plan = admission.plan if admission.changed else None
        return Answer(True, warnings=admission.warnings, plan=plan)
