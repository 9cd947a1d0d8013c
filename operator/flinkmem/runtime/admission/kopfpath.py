"""The second transport: the service's answers through kopf's admission engine (`--admission-engine kopf`).

kopf stays the framework either way (ADR 0001); here it also dispatches the reviews: its engine calls
the two handlers registered below, each of which asks the admission service and translates the answer
into kopf's terms (warnings, `kopf.AdmissionError`, a patch function). This is the only module that
reaches into kopf's private modules (`kopf._core`, `kopf._cogs`); they change between releases, so it
refuses to load with a kopf it was not tested with (`TESTED_KOPF`).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from typing import Any, cast

import kopf
from kopf._cogs.structs import references
from kopf._core.engines import admission as kopf_admission
from kopf._core.reactor import inventory

from flinkmem.conventions import MUTATE_ID, RECORD_ID, VALIDATE_BLUEGREEN_ID, VALIDATE_ID
from flinkmem.decisions.podplan import apply_plan
from flinkmem.runtime.admission.review import AdmissionRequest, ResourceKey, Response, Review, ReviewError
from flinkmem.runtime.admission.service import AdmissionService, Answer
from flinkmem.runtime.settings import ResourceRef

__all__ = ["TESTED_KOPF", "InProcessKopf", "KopfTransport", "register_admission"]

# The kopf release whose private admission API this module was written and tested against.
TESTED_KOPF = "1.45.2"
if version("kopf") != TESTED_KOPF:  # pragma: no cover - guards an upgrade, see the docstring
    raise ImportError(f"flinkmem's kopf admission path is tested with kopf {TESTED_KOPF}, not {version('kopf')}")


def _request(webhook: str, body: Mapping[str, Any], old: Mapping[str, Any] | None, **kwargs: Any) -> AdmissionRequest:
    resource = kwargs["resource"]
    metadata = body.get("metadata")
    return AdmissionRequest(
        webhook=webhook,
        operation=kwargs["operation"],
        resource=ResourceKey(resource.group, resource.version, resource.plural),
        object=dict(body),
        old_object=dict(old) if old is not None else None,
        namespace=metadata.get("namespace") if isinstance(metadata, Mapping) else None,
        username=(kwargs.get("userinfo") or {}).get("username"),
        dry_run=bool(kwargs.get("dryrun")),
    )


def _translate(answer: Answer, warnings: list[str], patch: kopf.Patch | None = None) -> None:
    warnings.extend(answer.warnings)
    if not answer.allowed:
        raise kopf.AdmissionError(answer.message, code=answer.code)
    plan = answer.plan
    if plan is not None and patch is not None:
        patch.fns.append(lambda raw: apply_plan(cast(dict[str, Any], raw), plan))
    if patch is not None:
        for key, value in answer.annotations:
            patch.metadata.annotations[key] = value
        for key in answer.labels_removed:
            patch.metadata.labels[key] = None


def register_admission(
    registry: kopf.OperatorRegistry,
    service: AdmissionService,
    resource: ResourceRef,
    bluegreen: ResourceRef | None = None,
) -> None:
    """The webhooks as kopf handlers, each a translation of the service's answer."""

    @kopf.on.validate(  # type: ignore[arg-type]  # kopf's protocol names only some keyword arguments
        resource.group,
        resource.version,
        resource.plural,
        id=VALIDATE_ID,
        operations=["CREATE", "UPDATE"],
        registry=registry,
    )
    async def validate_flinkdeployment(
        body: kopf.Body, old: kopf.Body | None, warnings: list[str], **kwargs: Any
    ) -> None:
        _translate(await service.answer(_request(VALIDATE_ID, body, old, **kwargs)), warnings)

    @kopf.on.mutate("", "v1", "pods", id=MUTATE_ID, operations=["CREATE"], registry=registry)  # type: ignore[arg-type]
    async def mutate_flink_pod(
        body: kopf.Body, old: kopf.Body | None, patch: kopf.Patch, warnings: list[str], **kwargs: Any
    ) -> None:
        _translate(await service.answer(_request(MUTATE_ID, body, old, **kwargs)), warnings, patch)

    @kopf.on.mutate(  # type: ignore[arg-type]  # as above
        resource.group,
        resource.version,
        resource.plural,
        id=RECORD_ID,
        operations=["CREATE", "UPDATE"],
        registry=registry,
    )
    async def record_flinkdeployment(
        body: kopf.Body, old: kopf.Body | None, patch: kopf.Patch, warnings: list[str], **kwargs: Any
    ) -> None:
        _translate(await service.answer(_request(RECORD_ID, body, old, **kwargs)), warnings, patch)

    del validate_flinkdeployment, mutate_flink_pod, record_flinkdeployment
    if bluegreen is None:
        return

    @kopf.on.validate(  # type: ignore[arg-type]  # as above
        bluegreen.group,
        bluegreen.version,
        bluegreen.plural,
        id=VALIDATE_BLUEGREEN_ID,
        operations=["CREATE", "UPDATE"],
        registry=registry,
    )
    async def validate_flinkbluegreendeployment(
        body: kopf.Body, old: kopf.Body | None, warnings: list[str], **kwargs: Any
    ) -> None:
        _translate(await service.answer(_request(VALIDATE_BLUEGREEN_ID, body, old, **kwargs)), warnings)

    del validate_flinkbluegreendeployment


class KopfTransport:
    """Hands a screened review to kopf's engine (`fn`, given to the server by kopf) and maps its errors."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    async def __call__(self, review: Review, request: AdmissionRequest) -> Response:
        try:
            response = await self.fn(review, webhook=request.webhook)
        except kopf_admission.UnknownResourceError as exc:
            raise ReviewError(str(exc), 404) from None
        except kopf_admission.AmbiguousResourceError as exc:
            raise ReviewError(str(exc), 409) from None
        except kopf_admission.WebhookError as exc:
            raise ReviewError(str(exc)) from None
        return cast(Response, response)


class InProcessKopf:
    """kopf's admission engine bound as `kopf.operator` binds it, without a server (tests, benchmarks)."""

    def __init__(
        self, registry: kopf.OperatorRegistry, resource: ResourceRef, bluegreen: ResourceRef | None = None
    ) -> None:
        self.registry = registry
        self.settings = kopf.OperatorSettings()
        self.insights = references.Insights()
        crds = [
            references.Resource(ref.group, ref.version, ref.plural, namespaced=True)
            for ref in (resource, bluegreen)
            if ref is not None
        ]
        pods = references.Resource("", "v1", "pods", kind="Pod", namespaced=True)
        self.insights.webhook_resources.update({*crds, pods})
        self.memories = inventory.ResourceMemories()
        self.memobase: Any = kopf.Memo()

    async def __call__(self, review: Mapping[str, Any], webhook: str) -> Response:
        response = await kopf_admission.serve_admission_request(
            cast(Any, review),
            webhook=cast(Any, webhook),
            settings=self.settings,
            registry=self.registry,
            insights=self.insights,
            memories=self.memories,
            memobase=self.memobase,
            indices={},
        )
        return cast(Response, dict(response))
