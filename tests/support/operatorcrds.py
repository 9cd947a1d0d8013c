"""The Apache Flink Kubernetes Operator's CRDs on a test cluster: flinkmem's stand-ins, or the operator's own.

Which CRDs (docs/development.md, "The operator's CRDs"):

- by default, as in CI: the FlinkDeployment CRD flinkmem bundles (`operator/flinkmem/data/`, open below
  `spec`, so it keeps `spec.<role>.resources` as the operator's main-branch CRD does) and the stand-in
  FlinkBlueGreenDeployment CRD of `tests/support/crds/` (flinkmem's own minimal schema). CI cannot
  download the operator's CRDs, and flinkmem never commits another project's files;
- with `FLINKMEM_OPERATOR_CRDS=<dir>`: every CRD in that directory, such as a copy of
  `helm/flink-kubernetes-operator/crds/` of the operator's repository at release-1.15.0 (blue/green, no
  `resources`) or at main (both). They replace the stand-ins for as long as the context lasts; the
  bundled FlinkDeployment CRD is put back after, so other tests of the session find what they expect.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from flinkmem.runtime.devsetup import bundled_crd
from localplane.controlplane import Cluster, wait_until

__all__ = ["ENV", "STAND_INS", "InstalledCrds", "operator_crds"]

ENV = "FLINKMEM_OPERATOR_CRDS"
STAND_INS = Path(__file__).parent / "crds"
FLINKDEPLOYMENTS = "flinkdeployments.flink.apache.org"
BLUEGREEN = "flinkbluegreendeployments.flink.apache.org"


@dataclass(frozen=True)
class InstalledCrds:
    origin: str  # "stand-ins", or the directory the operator's CRDs came from
    resources_field: bool  # the FlinkDeployment CRD keeps spec.<role>.resources (the operator's main branch)
    bluegreen: bool  # a FlinkBlueGreenDeployment CRD is installed


def _load(directory: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".yaml", ".yml"):
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                found.append(doc)
    if not found:
        raise RuntimeError(f"{ENV}={directory} holds no CustomResourceDefinition")
    return found


def _put(api: client.ApiClient, crd: Mapping[str, Any]) -> None:
    """Creates the CRD, or replaces the one of that name (a PUT: no field of the previous one survives)."""
    extensions = client.ApiextensionsV1Api(api)
    body = json.loads(json.dumps(crd))
    body["metadata"].pop("resourceVersion", None)
    try:
        extensions.create_custom_resource_definition(body)
        return
    except ApiException as exc:
        if exc.status != 409:
            raise
    current = extensions.read_custom_resource_definition(body["metadata"]["name"])
    assert current.metadata is not None
    body["metadata"]["resourceVersion"] = current.metadata.resource_version
    extensions.replace_custom_resource_definition(body["metadata"]["name"], body)


def _keeps_resources(crd: Mapping[str, Any]) -> bool:
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    if spec.get("x-kubernetes-preserve-unknown-fields"):
        return True
    return "resources" in (spec.get("properties", {}).get("jobManager", {}).get("properties") or {})


def _served_as_written(cluster: Cluster, keeps_resources: bool) -> None:
    """Until the API server reads FlinkDeployments with the CRD just written (it switches a moment later)."""
    probe = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "flinkmem-crd-probe", "namespace": "default"},
        "spec": {"flinkVersion": "v1_20", "jobManager": {"resources": {"requests": {"memory": "1Gi"}}}},
    }

    def settled() -> bool:
        result = cluster.kubectl(
            "create",
            "--dry-run=server",
            "--validate=ignore",
            "-o",
            "json",
            "-f",
            "-",
            input=json.dumps(probe),
            check=False,
        )
        if result.returncode != 0:
            return False
        kept = "resources" in (json.loads(result.stdout)["spec"].get("jobManager") or {})
        return kept == keeps_resources

    wait_until(settled, timeout=60, what="the API server serving the FlinkDeployment CRD just written")


def _install(cluster: Cluster, crds: list[dict[str, Any]]) -> None:
    with cluster.api_client() as api:
        for crd in crds:
            _put(api, crd)
    for crd in crds:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}", "--timeout=60s")


@contextmanager
def operator_crds(cluster: Cluster) -> Iterator[InstalledCrds]:
    """The operator's CRDs this session tests against (see the module docstring)."""
    directory = os.environ.get(ENV, "").strip()
    if not directory:
        stand_ins = [bundled_crd(), *_load(STAND_INS)]
        _install(cluster, stand_ins)
        _served_as_written(cluster, True)
        yield InstalledCrds("stand-ins", True, True)
        return
    crds = _load(Path(directory))
    names = {crd["metadata"]["name"] for crd in crds}
    if FLINKDEPLOYMENTS not in names:
        raise RuntimeError(f"{ENV}={directory} has no {FLINKDEPLOYMENTS} CRD")
    flinkdeployments = next(crd for crd in crds if crd["metadata"]["name"] == FLINKDEPLOYMENTS)
    keeps = _keeps_resources(flinkdeployments)
    _install(cluster, crds)
    _served_as_written(cluster, keeps)
    try:
        yield InstalledCrds(directory, keeps, BLUEGREEN in names)
    finally:
        _install(cluster, [bundled_crd()])
        _served_as_written(cluster, True)
