"""Which webhook of a configuration the API server would call for an object, from its objectSelector.

The benchmarks send each kind of pod to the webhook flinkmem registered for it, so that they measure
the path a real create takes (and a TaskManager pod measures as soon as a webhook selects it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["matches", "selecting_webhook_path"]


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A Kubernetes LabelSelector against labels; an empty or absent selector matches everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown label selector operator {operator!r}")
    return True


def _reviews_pods(webhook: Mapping[str, Any]) -> bool:
    return any("pods" in (rule.get("resources") or []) for rule in webhook.get("rules") or [])


def selecting_webhook_path(configuration: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """The URL path of the first pod webhook whose objectSelector selects these labels, or None."""
    for webhook in configuration.get("webhooks") or []:
        if _reviews_pods(webhook) and matches(webhook.get("objectSelector"), labels):
            client = webhook.get("clientConfig") or {}
            if "url" in client:
                return urlsplit(str(client["url"])).path
            service = client.get("service") or {}
            return str(service.get("path") or "/")
    return None
