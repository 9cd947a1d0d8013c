"""Kubernetes object names, checked before flinkmem uses one to look anything up.

A review is only JSON, and a label value is any text: a namespace or name that is not what the API
server itself would accept never reaches a cache key or an API path.
"""

from __future__ import annotations

import re

__all__ = ["is_dns1123_label", "is_dns1123_subdomain"]

_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_SEGMENT = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")


def is_dns1123_label(text: object) -> bool:
    """A namespace or a label-like name: at most 63 lower-case letters, digits and `-`, alphanumeric ends."""
    return isinstance(text, str) and len(text) <= 63 and _LABEL.fullmatch(text) is not None


def is_dns1123_subdomain(text: object) -> bool:
    """An object name such as a FlinkDeployment's or a ConfigMap's: at most 253 characters of
    dot-separated labels."""
    if not isinstance(text, str) or not 0 < len(text) <= 253:
        return False
    return all(_SEGMENT.fullmatch(part) for part in text.split("."))
