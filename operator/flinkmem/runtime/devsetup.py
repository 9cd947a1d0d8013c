"""Local development set-up for `flinkmem serve`: the bundled CRD and URL-based webhook configurations."""

from __future__ import annotations

import base64
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from flinkmem.conventions import WEBHOOK_CONFIG_NAME
from flinkmem.runtime.settings import Settings
from flinkmem.runtime.webhookconfig import mutating_configuration, validating_configuration

__all__ = ["bundled_crd", "install_crd_if_absent", "register_webhooks"]

logger = logging.getLogger("flinkmem.devsetup")


def bundled_crd() -> dict[str, Any]:
    text = resources.files("flinkmem").joinpath("data/flinkdeployments-crd.yaml").read_text(encoding="utf-8")
    crd: dict[str, Any] = yaml.safe_load(text)
    return crd


def install_crd_if_absent(api: client.ApiClient) -> bool:
    """Creates the bundled FlinkDeployment CRD unless one is installed; True if it was created."""
    crd = bundled_crd()
    extensions = client.ApiextensionsV1Api(api)
    try:
        extensions.read_custom_resource_definition(crd["metadata"]["name"])
        return False
    except ApiException as exc:
        if exc.status != 404:
            raise
    extensions.create_custom_resource_definition(crd)  # type: ignore[arg-type]  # the client accepts dicts
    logger.info("installed the bundled CRD %s", crd["metadata"]["name"])
    return True


def register_webhooks(api: client.ApiClient, settings: Settings, base_url: str, ca_file: Path) -> None:
    """Creates or replaces the `flinkmem` webhook configurations, calling `base_url` directly."""
    ca_bundle = base64.b64encode(ca_file.read_bytes()).decode("ascii")
    admission = client.AdmissionregistrationV1Api(api)
    # With --service-account, the same matchConditions as the chart: flinkmem's own annotation writes skip it.
    validating = validating_configuration(
        settings.resource, base_url, ca_bundle, settings.excluded_namespaces, own_identity=settings.service_account
    )
    _create_or_replace(
        validating,
        admission.read_validating_webhook_configuration,
        admission.create_validating_webhook_configuration,
        admission.replace_validating_webhook_configuration,
    )
    if settings.pod_mutation:
        mutating = mutating_configuration(base_url, ca_bundle, settings.excluded_namespaces)
        _create_or_replace(
            mutating,
            admission.read_mutating_webhook_configuration,
            admission.create_mutating_webhook_configuration,
            admission.replace_mutating_webhook_configuration,
        )
    logger.info("registered webhook configurations %r calling %s", WEBHOOK_CONFIG_NAME, base_url)


def _create_or_replace(obj: dict[str, Any], read: Any, create: Any, replace: Any) -> None:
    name = obj["metadata"]["name"]
    try:
        current = read(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
        create(obj)
        return
    obj["metadata"]["resourceVersion"] = current.metadata.resource_version
    replace(name, obj)
