"""A FlinkBlueGreenDeployment, read as the FlinkDeployment the Apache operator deploys from it.

A blue/green deployment (`flink.apache.org/v1beta1`, operator 1.14.0 and later) embeds a whole
FlinkDeployment spec in `spec.template.spec`. The operator deploys it as the child FlinkDeployment
`<name>-blue`, and on the next change `<name>-green` (`BlueGreenUtils.prepareFlinkDeployment`):
the template's spec unchanged (only the job's initial savepoint path and an ingress template prefix
are adjusted, neither of them memory), in the parent's namespace, with one owner reference to the
parent (`BlueGreenKubernetesService.getDependentObjectMeta`) and the single label
`flink/blue-green-deployment-type: BLUE|GREEN`; `spec.template.metadata` and `spec.configuration`
(the blue/green controller's own options) do not reach it. So the memory of a blue/green deployment
is the memory of that FlinkDeployment, and flinkmem reads it through the same mapping
(`sources.flinkdeployment`), with every field named at its place in the blue/green deployment
(`spec.template.spec...`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flinkmem.conventions import BLUEGREEN_TYPE_LABEL
from flinkmem.sources.flinkdeployment import memory_inputs
from flinkmem.sources.specfields import SpecError

__all__ = [
    "BLUEGREEN_KIND",
    "COLORS",
    "TEMPLATE_SPEC_PATH",
    "bluegreen_memory_inputs",
    "child_deployment",
    "child_name",
]

BLUEGREEN_KIND = "FlinkBlueGreenDeployment"
# Where the FlinkDeployment spec lives in a blue/green deployment.
TEMPLATE_SPEC_PATH = "spec.template.spec"
# The operator deploys blue first (INITIALIZING_BLUE), then alternates.
COLORS = ("blue", "green")


def _mapping(obj: Mapping[str, Any], key: str, path: str, required: bool) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        problem = "is missing; a FlinkBlueGreenDeployment deploys the FlinkDeployment spec it holds here"
        raise SpecError(path, problem if value is None else "must be an object")
    return value


def child_name(obj: Mapping[str, Any], color: str = COLORS[0]) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return f"{name or '(unnamed)'}-{color}"


def child_deployment(obj: Mapping[str, Any], color: str = COLORS[0]) -> dict[str, Any]:
    """The FlinkDeployment the operator creates from `obj` as `color`; SpecError naming the field where the
    blue/green deployment holds no FlinkDeployment spec."""
    if not isinstance(obj, Mapping):
        raise SpecError("(object)", "must be a FlinkBlueGreenDeployment object")
    metadata = _mapping(obj, "metadata", "metadata", required=False)
    spec = _mapping(obj, "spec", "spec", required=True)
    template = _mapping(spec, "template", "spec.template", required=True)
    template_spec = _mapping(template, "spec", TEMPLATE_SPEC_PATH, required=True)
    child_metadata: dict[str, Any] = {
        "name": child_name(obj, color),
        "labels": {BLUEGREEN_TYPE_LABEL: color.upper()},
    }
    if isinstance(metadata.get("namespace"), str):
        child_metadata["namespace"] = metadata["namespace"]
    if all(isinstance(metadata.get(key), str) for key in ("name", "uid")):
        child_metadata["ownerReferences"] = [
            {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind") or BLUEGREEN_KIND,
                "name": metadata["name"],
                "uid": metadata["uid"],
                "blockOwnerDeletion": True,
                "controller": False,
            }
        ]
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": child_metadata,
        "spec": template_spec,
    }


def bluegreen_memory_inputs(obj: Mapping[str, Any] | None) -> str:
    """The raw parts of a blue/green deployment that can change the memory of what it deploys."""
    spec = obj.get("spec") if isinstance(obj, Mapping) else None
    template = spec.get("template") if isinstance(spec, Mapping) else None
    template_spec = template.get("spec") if isinstance(template, Mapping) else None
    return memory_inputs({"spec": template_spec})
