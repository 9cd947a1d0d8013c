"""Local development set-up for `flinkmem serve`: the bundled CRD and URL-based webhook configurations."""

from __future__ import annotations

import base64
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from flinkmem.conventions import WEBHOOK_CONFIG_NAME
from flinkmem.runtime.cluster import Cluster
from flinkmem.runtime.settings import Settings
from flinkmem.runtime.webhookconfig import mutating_configuration, validating_configuration

__all__ = ["DevSetupError", "bundled_crd", "install_crd_if_absent", "register_webhooks"]

logger = logging.getLogger("flinkmem.devsetup")

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
VALIDATING_PATH = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
MUTATING_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


class DevSetupError(RuntimeError):
    """The API server refused a development set-up call."""


def bundled_crd() -> dict[str, Any]:
    text = resources.files("flinkmem").joinpath("data/flinkdeployments-crd.yaml").read_text(encoding="utf-8")
    crd: dict[str, Any] = yaml.safe_load(text)
    return crd


def _failed(what: str, status: int, data: Any) -> DevSetupError:
    message = data.get("message") if isinstance(data, dict) else data
    return DevSetupError(f"{what}: HTTP {status} {message}")


async def install_crd_if_absent(cluster: Cluster) -> bool:
    """Creates the bundled FlinkDeployment CRD unless one is installed; True if it was created."""
    crd = bundled_crd()
    name = crd["metadata"]["name"]
    status, data = await cluster.request("GET", f"{CRD_PATH}/{name}")
    if status == 200:
        return False
    if status != 404:
        raise _failed(f"reading the CRD {name}", status, data)
    status, data = await cluster.request("POST", CRD_PATH, crd)
    if status == 409:  # another replica or process created it meanwhile
        return False
    if status != 201:
        raise _failed(f"creating the CRD {name}", status, data)
    logger.info("installed the bundled CRD %s", name)
    return True


async def register_webhooks(cluster: Cluster, settings: Settings, base_url: str, ca_file: Path) -> None:
    """Creates or replaces the `flinkmem` webhook configurations, calling `base_url` directly."""
    ca_bundle = base64.b64encode(ca_file.read_bytes()).decode("ascii")
    # With --service-account, the same matchConditions as the chart: flinkmem's own annotation writes skip it.
    validating = validating_configuration(
        settings.resource,
        base_url,
        ca_bundle,
        settings.excluded_namespaces,
        own_identity=settings.service_account,
        bluegreen=settings.bluegreen_resource,
    )
    await _create_or_replace(cluster, VALIDATING_PATH, validating)
    mutating = mutating_configuration(
        base_url,
        ca_bundle,
        settings.excluded_namespaces,
        resource=settings.resource,
        own_identity=settings.service_account,
        pods=settings.pod_mutation,
    )
    await _create_or_replace(cluster, MUTATING_PATH, mutating)
    logger.info("registered webhook configurations %r calling %s", WEBHOOK_CONFIG_NAME, base_url)


async def _create_or_replace(cluster: Cluster, collection: str, obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    status, current = await cluster.request("GET", f"{collection}/{name}")
    if status == 404:
        status, data = await cluster.request("POST", collection, obj)
        if status != 201:
            raise _failed(f"creating {collection}/{name}", status, data)
        return
    if status != 200 or not isinstance(current, dict):
        raise _failed(f"reading {collection}/{name}", status, current)
    obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
    status, data = await cluster.request("PUT", f"{collection}/{name}", obj)
    if status != 200:
        raise _failed(f"replacing {collection}/{name}", status, data)
