"""The few Kubernetes API calls flinkmem makes itself (the rest goes through kopf).

Kept in one place so the RBAC it needs is easy to read off: get FlinkDeployments, create pod
evictions, and, for local development only, create CRDs and webhook configurations.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from flinkmem.metrics import Metrics
from flinkmem.settings import Settings

__all__ = ["Cluster", "OwnerLookupError", "load_client"]

logger = logging.getLogger("flinkmem.cluster")


class OwnerLookupError(RuntimeError):
    """The FlinkDeployment could not be read (timeout, RBAC, API down)."""


def load_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig ($KUBECONFIG)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


@dataclass
class Cluster:
    """Everything the handlers need besides the request itself."""

    settings: Settings
    metrics: Metrics
    api: client.ApiClient

    def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        resource = self.settings.resource
        try:
            obj = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                resource.group,
                resource.version,
                namespace,
                resource.plural,
                name,
                _request_timeout=self.settings.owner_lookup_timeout,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise OwnerLookupError(f"reading {resource.plural} {namespace}/{name} failed: HTTP {exc.status}") from None
        except Exception as exc:
            raise OwnerLookupError(f"reading {resource.plural} {namespace}/{name} failed: {exc}") from None
        return cast(Mapping[str, Any], obj)

    def post_event(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Posts a core/v1 Event about `target` (used where kopf's own poster is not available)."""
        meta = target.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = datetime.datetime.now(datetime.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{meta.get('name', 'flinkmem')}.", namespace=namespace),
            involved_object=client.V1ObjectReference(
                api_version=target.get("apiVersion"),
                kind=target.get("kind"),
                name=meta.get("name"),
                namespace=namespace,
                uid=meta.get("uid"),
            ),
            reason=reason,
            message=message[:1024],
            type=type_,
            source=client.V1EventSource(component="flinkmem"),
            reporting_component="flinkmem",
            reporting_instance="flinkmem",
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        try:
            client.CoreV1Api(self.api).create_namespaced_event(namespace, event)
        except Exception as exc:
            logger.warning("posting the %s event failed: %s", reason, exc)

    def evict_pod(self, namespace: str, name: str) -> bool:
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))
        try:
            client.CoreV1Api(self.api).create_namespaced_pod_eviction(name, namespace, body)
        except ApiException as exc:
            logger.warning("evicting pod %s/%s failed: HTTP %s %s", namespace, name, exc.status, exc.reason)
            return False
        return True
