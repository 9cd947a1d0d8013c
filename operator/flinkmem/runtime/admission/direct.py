"""The default transport: the service's answer written straight into an AdmissionReview response.

kopf's admission engine wraps every review in views, a diff, a cause and a memo, dispatches through its
handler machinery and, for a pod, deep-copies the body and diffs it against the patched copy to make a
JSON patch: measured at several times flinkmem's own decision (benchmarks/review_parts.py). Here the
review goes to the same service and a pod's patch is built from its plan (ADR 0001).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from flinkmem.runtime.admission.review import AdmissionRequest, Response, ResponsePayload, Review
from flinkmem.runtime.admission.service import AdmissionService, Answer

__all__ = ["DirectTransport", "annotation_patch", "response_for"]


def response_for(uid: str, answer: Answer, obj: Mapping[str, Any] | None) -> Response:
    """The AdmissionReview response carrying `answer`; a pod's plan becomes a JSON patch of `obj`."""
    payload = ResponsePayload(uid=uid, allowed=answer.allowed)
    if answer.warnings:
        payload["warnings"] = list(answer.warnings)
    if not answer.allowed:
        payload["status"] = {"code": answer.code, "message": answer.message}
    ops: list[dict[str, Any]] = []
    if answer.plan is not None and obj is not None:
        ops = answer.plan.json_patch(obj)
    elif answer.annotations and obj is not None:
        ops = annotation_patch(obj, answer.annotations)
    elif answer.labels_removed:
        escape = str.maketrans({"~": "~0", "/": "~1"})
        ops = [{"op": "remove", "path": f"/metadata/labels/{key.translate(escape)}"} for key in answer.labels_removed]
    if ops:
        payload["patch"] = base64.b64encode(json.dumps(ops, separators=(",", ":")).encode()).decode()
        payload["patchType"] = "JSONPatch"
    return Response(apiVersion="admission.k8s.io/v1", kind="AdmissionReview", response=payload)


def annotation_patch(obj: Mapping[str, Any], annotations: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """JSON patch operations setting `annotations` on `obj` (adding the map when it has none)."""
    present = (obj.get("metadata") or {}).get("annotations")
    if not isinstance(present, Mapping):
        return [{"op": "add", "path": "/metadata/annotations", "value": dict(annotations)}]
    escape = str.maketrans({"~": "~0", "/": "~1"})
    return [
        {"op": "add", "path": f"/metadata/annotations/{key.translate(escape)}", "value": value}
        for key, value in annotations
    ]


class DirectTransport:
    """Answers a screened review from the service, without kopf's admission engine."""

    def __init__(self, service: AdmissionService) -> None:
        self.service = service

    async def __call__(self, review: Review, request: AdmissionRequest) -> Response:
        answer = await self.service.answer(request)
        return response_for(review["request"]["uid"], answer, request.object)
