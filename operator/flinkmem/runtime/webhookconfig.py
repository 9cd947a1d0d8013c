"""The webhook configurations flinkmem needs, as plain objects.

The Helm chart and `manifests/` render the production form (a `service` client config and a CA
injected by cert-manager); `flinkmem serve --register-url` uses these builders for local development,
where the API server calls the webhook by URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flinkmem.conventions import (
    COMPONENT_LABEL,
    FLINK_POD_TYPES,
    MUTATE_ID,
    MUTATE_WEBHOOK_NAME,
    OPT_IN_LABEL,
    OPT_IN_MUTATE_WEBHOOK_NAME,
    RECORD_ID,
    RECORD_WEBHOOK_NAME,
    TYPE_LABEL,
    VALIDATE_BLUEGREEN_ID,
    VALIDATE_BLUEGREEN_WEBHOOK_NAME,
    VALIDATE_ID,
    VALIDATE_WEBHOOK_NAME,
    WEBHOOK_CONFIG_NAME,
)
from flinkmem.decisions.policy import DEFAULT_EXCLUDED
from flinkmem.runtime.settings import ResourceRef
from flinkmem.sources.roles import ROLES

__all__ = ["mutating_configuration", "skip_own_annotation_writes", "validating_configuration"]

TIMEOUT_SECONDS = 5


def _client_config(base_url: str, path: str, ca_bundle: str) -> dict[str, Any]:
    return {"url": f"{base_url.rstrip('/')}/{path}", "caBundle": ca_bundle}


def _namespace_selector(excluded: Sequence[str]) -> dict[str, Any]:
    """Never asked about an excluded namespace: the same list the service and the controller skip."""
    values = list(dict.fromkeys(excluded))
    return {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": values}]}


def skip_own_annotation_writes(own_identity: str) -> list[dict[str, str]]:
    """matchConditions that spare the webhook flinkmem's own metadata-only updates (its annotations).

    Its spec changes still reach the webhook, which refuses them. CEL's && yields false when any side is
    false, so the null oldObject of a CREATE never makes the expression fail.
    """
    expression = (
        f"!(request.userInfo.username == '{own_identity}' && request.operation == 'UPDATE' && "
        "has(object.spec) && has(oldObject.spec) && object.spec == oldObject.spec)"
    )
    return [{"name": "skip-flinkmem-annotation-writes", "expression": expression}]


def _resource_webhook(
    name: str,
    path: str,
    resource: ResourceRef,
    base_url: str,
    ca_bundle: str,
    excluded: Sequence[str],
    own_identity: str | None,
    **policy: str,
) -> dict[str, Any]:
    """A webhook on CREATE and UPDATE of `resource`, sparing flinkmem's own annotation writes; `policy`
    holds its failurePolicy, sideEffects and the like."""
    extra = {"matchConditions": skip_own_annotation_writes(own_identity)} if own_identity else {}
    return {
        "name": name,
        "clientConfig": _client_config(base_url, path, ca_bundle),
        "rules": [
            {
                "apiGroups": [resource.group],
                "apiVersions": [resource.version],
                "resources": [resource.plural],
                "operations": ["CREATE", "UPDATE"],
                "scope": "Namespaced",
            }
        ],
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": TIMEOUT_SECONDS,
        **policy,
        "namespaceSelector": _namespace_selector(excluded),
        **extra,
    }


def _validating_webhook(
    name: str,
    path: str,
    resource: ResourceRef,
    base_url: str,
    ca_bundle: str,
    excluded: Sequence[str],
    own_identity: str | None,
) -> dict[str, Any]:
    # It posts a MemoryRefused Event on a refused update, never on a dry run.
    return _resource_webhook(
        name,
        path,
        resource,
        base_url,
        ca_bundle,
        excluded,
        own_identity,
        failurePolicy="Fail",
        sideEffects="NoneOnDryRun",
    )


def validating_configuration(
    resource: ResourceRef,
    base_url: str,
    ca_bundle: str,
    excluded: Sequence[str] = DEFAULT_EXCLUDED,
    own_identity: str | None = None,
    bluegreen: ResourceRef | None = None,
) -> dict[str, Any]:
    """FlinkDeployments, and with `bluegreen` the Apache operator's FlinkBlueGreenDeployments (a webhook of their
    own, so that kubectl names which one refused)."""
    webhooks = [
        _validating_webhook(VALIDATE_WEBHOOK_NAME, VALIDATE_ID, resource, base_url, ca_bundle, excluded, own_identity)
    ]
    if bluegreen is not None:
        webhooks.append(
            _validating_webhook(
                VALIDATE_BLUEGREEN_WEBHOOK_NAME,
                VALIDATE_BLUEGREEN_ID,
                bluegreen,
                base_url,
                ca_bundle,
                excluded,
                own_identity,
            )
        )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIG_NAME, "labels": {"app.kubernetes.io/name": "flinkmem"}},
        "webhooks": webhooks,
    }


def _record_webhook(
    resource: ResourceRef, base_url: str, ca_bundle: str, excluded: Sequence[str], own_identity: str | None
) -> dict[str, Any]:
    """The FlinkDeployment's resolved-memory annotation, written in the same write as the object."""
    return _resource_webhook(
        RECORD_WEBHOOK_NAME,
        RECORD_ID,
        resource,
        base_url,
        ca_bundle,
        excluded,
        own_identity,
        # Only a record: without it the object is admitted (the validating webhook decides) and the
        # controller writes the annotation afterwards, as it does for objects created before flinkmem.
        failurePolicy="Ignore",
        sideEffects="None",
        # A later webhook changing the spec (the Apache operator's defaults) calls it again, so the
        # record is of the spec that is stored.
        reinvocationPolicy="IfNeeded",
    )


def _pod_webhooks(base_url: str, ca_bundle: str, excluded: Sequence[str]) -> list[dict[str, Any]]:
    common: dict[str, Any] = {
        "clientConfig": _client_config(base_url, MUTATE_ID, ca_bundle),
        "rules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "operations": ["CREATE"],
                "scope": "Namespaced",
            }
        ],
        # Pods must never be blocked by flinkmem being down; the controller reports what it missed.
        "failurePolicy": "Ignore",
        "sideEffects": "NoneOnDryRun",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": TIMEOUT_SECONDS,
        # The pod mutation is idempotent: when a later webhook changes the pod (a sidecar injector adding
        # env or resources), a second call sizes what it made, and changes nothing otherwise.
        "reinvocationPolicy": "IfNeeded",
        "namespaceSelector": _namespace_selector(excluded),
    }
    return [
        {
            "name": MUTATE_WEBHOOK_NAME,
            **common,
            "objectSelector": {
                "matchExpressions": [
                    {"key": COMPONENT_LABEL, "operator": "In", "values": [role.key for role in ROLES]},
                    {"key": TYPE_LABEL, "operator": "In", "values": list(FLINK_POD_TYPES)},
                ]
            },
        },
        # A label selector cannot say "one label or the other": opted-in pods get a webhook of their own.
        {
            "name": OPT_IN_MUTATE_WEBHOOK_NAME,
            **common,
            "objectSelector": {
                "matchExpressions": [
                    {"key": COMPONENT_LABEL, "operator": "In", "values": [role.key for role in ROLES]},
                    {"key": OPT_IN_LABEL, "operator": "In", "values": ["true"]},
                ]
            },
        },
    ]


def mutating_configuration(
    base_url: str,
    ca_bundle: str,
    excluded: Sequence[str] = DEFAULT_EXCLUDED,
    *,
    resource: ResourceRef | None = None,
    own_identity: str | None = None,
    pods: bool = True,
) -> dict[str, Any]:
    """The FlinkDeployment record webhook (with `resource`) and the pod-sizing webhooks (with `pods`)."""
    webhooks = [] if resource is None else [_record_webhook(resource, base_url, ca_bundle, excluded, own_identity)]
    if pods:
        webhooks += _pod_webhooks(base_url, ca_bundle, excluded)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIG_NAME, "labels": {"app.kubernetes.io/name": "flinkmem"}},
        "webhooks": webhooks,
    }
