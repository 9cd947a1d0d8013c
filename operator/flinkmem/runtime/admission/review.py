"""An AdmissionReview as typed data, checked before anything reads it.

The API server sends `admission.k8s.io/v1` reviews; anyone who can reach the port can send anything.
`check_review` checks every field flinkmem or kopf reads, so malformed input is an HTTP 400 naming the
field, never a crash, and turns the body into a `Review` (typed like kopf's `_cogs/structs/reviews.py`).
`AdmissionRequest` is the plain request the admission service decides on, built the same way from a
review (the direct path) or from kopf's handler arguments (kopf's path).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, cast

__all__ = [
    "AdmissionRequest",
    "RequestPayload",
    "ResourceKey",
    "Response",
    "ResponsePayload",
    "Review",
    "ReviewError",
    "UserInfo",
    "check_review",
    "metadata_problem",
]

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
_OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")


class RequestResource(TypedDict):
    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]


class RequestPayload(TypedDict, total=False):
    uid: str  # always present once checked
    resource: RequestResource  # always present once checked
    subResource: str | None
    name: str | None
    namespace: str | None
    operation: Operation  # always present once checked
    userInfo: UserInfo  # always present once checked
    object: dict[str, Any] | None
    oldObject: dict[str, Any] | None
    dryRun: bool | None


class Review(TypedDict):
    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    request: RequestPayload


class ResponseStatus(TypedDict, total=False):
    code: int
    message: str


class ResponsePayload(TypedDict, total=False):
    uid: str
    allowed: bool
    warnings: list[str]
    status: ResponseStatus
    patch: str
    patchType: Literal["JSONPatch"]


class Response(TypedDict):
    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    response: ResponsePayload


class ReviewError(ValueError):
    """The body is not an AdmissionReview request this webhook can answer; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_review(data: object) -> Review:
    """Checks the fields kopf and flinkmem read, so malformed input is a 400, never a crash."""
    if not isinstance(data, dict):
        raise ReviewError("the body must be a JSON object (an AdmissionReview)")
    if data.get("kind") != "AdmissionReview" or data.get("apiVersion") != "admission.k8s.io/v1":
        raise ReviewError("only admission.k8s.io/v1 AdmissionReview is accepted")
    request = data.get("request")
    if not isinstance(request, dict):
        raise ReviewError("request must be an object")
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        raise ReviewError("request.uid must be a non-empty string")
    if request.get("operation") not in _OPERATIONS:
        raise ReviewError("request.operation must be CREATE, UPDATE, DELETE or CONNECT")
    resource = request.get("resource")
    if not isinstance(resource, dict) or not all(isinstance(resource.get(k), str) for k in ("group", "version")):
        raise ReviewError("request.resource must name group, version and resource")
    if not isinstance(resource.get("resource"), str) or not resource["resource"]:
        raise ReviewError("request.resource.resource must be a non-empty string")
    for key in ("subResource", "namespace", "name"):
        if request.get(key) is not None and not isinstance(request[key], str):
            raise ReviewError(f"request.{key} must be a string")
    if not isinstance(request.get("userInfo"), dict):
        raise ReviewError("request.userInfo must be an object")
    for key in ("object", "oldObject"):
        value = request.get(key)
        if value is not None and not isinstance(value, dict):
            raise ReviewError(f"request.{key} must be an object or null")
    if request.get("object") is None and request.get("oldObject") is None:
        raise ReviewError("request.object or request.oldObject must be present")
    if request.get("dryRun") is not None and not isinstance(request["dryRun"], bool):
        raise ReviewError("request.dryRun must be a boolean")
    # Pods created through a namespaced URL may arrive without metadata.namespace; the request has it.
    obj = request.get("object")
    if isinstance(obj, dict) and isinstance(request.get("namespace"), str):
        metadata = obj.setdefault("metadata", {})
        if isinstance(metadata, dict) and not metadata.get("namespace"):
            metadata["namespace"] = request["namespace"]
    return cast(Review, data)


_STRING_FIELDS = ("name", "namespace", "uid", "generateName")


def metadata_problem(obj: object, path: str) -> str | None:
    """What is wrong with an object's metadata for kopf and the decisions to read it, if anything.

    A well-formed AdmissionReview can still carry an object whose metadata is null or mistyped (the
    API server checks built-in kinds, but a custom resource's review is only JSON). kopf reads the
    metadata before any handler runs, so such a review is answered before either transport, naming
    the field.
    """
    if not isinstance(obj, dict) or "metadata" not in obj:
        return None
    metadata = obj["metadata"]
    if not isinstance(metadata, dict):
        return f"{path}.metadata must be an object"
    for key in _STRING_FIELDS:
        if metadata.get(key) is not None and not isinstance(metadata[key], str):
            return f"{path}.metadata.{key} must be a string"
    for key in ("labels", "annotations"):
        if key not in metadata:
            continue
        values = metadata[key]
        if not isinstance(values, dict):
            return f"{path}.metadata.{key} must be a map of strings"
        for name, value in values.items():
            if not isinstance(value, str):
                return f"{path}.metadata.{key}[{name!r}] must be a string"
    return None


@dataclass(frozen=True)
class ResourceKey:
    group: str
    version: str
    plural: str


@dataclass(frozen=True)
class AdmissionRequest:
    """What the admission service decides on, whichever transport carried the review."""

    webhook: str  # the webhook id, from the URL path
    operation: str
    resource: ResourceKey
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None = None
    namespace: str | None = None
    username: str | None = None
    dry_run: bool = False

    @classmethod
    def from_review(cls, webhook: str, review: Review) -> AdmissionRequest:
        request = review["request"]
        resource = request["resource"]
        new, old = request.get("object"), request.get("oldObject")
        metadata = (new or old or {}).get("metadata")
        namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
        return cls(
            webhook=webhook,
            operation=request["operation"],
            resource=ResourceKey(resource["group"], resource["version"], resource["resource"]),
            object=new,
            old_object=old,
            namespace=request.get("namespace") or namespace,
            username=request["userInfo"].get("username"),
            dry_run=bool(request.get("dryRun")),
        )

    @property
    def metadata_problem(self) -> str | None:
        return metadata_problem(self.object, "object") or metadata_problem(self.old_object, "oldObject")
