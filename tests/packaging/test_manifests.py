"""manifests/: the chart rendered with its default values, as `kubectl apply -k manifests/` installs it."""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from localplane.controlplane import kubectl_binary
from tests.packaging.chart import CHART, MANIFESTS, find, load_documents, render


def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def _by_key(objs: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    keyed = {_key(o): o for o in objs}
    assert len(keyed) == len(objs), "duplicate objects"
    return keyed


def test_manifests_are_the_chart_with_default_values() -> None:
    # `make manifests` regenerates them; this fails when someone changes the chart but not them.
    rendered = render(release="flinkmem", namespace="flinkmem")
    committed = load_documents((MANIFESTS / "flinkmem.yaml").read_text())
    assert _by_key(committed) == _by_key(rendered), "manifests/flinkmem.yaml is stale: run `make manifests`"
    peering_crds = (MANIFESTS / "kopf-peering-crds.yaml").read_text()
    assert peering_crds == (CHART / "crds" / "kopf-peering.yaml").read_text(), "run `make manifests`"


def test_kustomization_builds_namespace_peering_crds_and_flinkmem_but_not_the_flink_crd() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["namespace.yaml", "kopf-peering-crds.yaml", "flinkmem.yaml"]
    built = subprocess.run(
        [kubectl_binary(), "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    objs = load_documents(built)
    expected = [
        *load_documents((MANIFESTS / "namespace.yaml").read_text()),
        *render(include_crds=True),
    ]
    assert _by_key(objs) == _by_key(expected)
    crd_names = {o["metadata"]["name"] for o in objs if o["kind"] == "CustomResourceDefinition"}
    assert crd_names == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    namespace = find(objs, "Namespace", "flinkmem")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {o["metadata"].get("namespace") for o in objs if o["kind"] in ("Deployment", "Service")} == {"flinkmem"}
