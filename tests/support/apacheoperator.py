"""What the Apache Flink Kubernetes Operator does that the tests need, reproduced from its source.

flinkmem's tests have no operator running: where they need what it would create, these functions make it,
each naming the place in the operator's source (apache/flink-kubernetes-operator at release-1.15.0, the
same on main where not said otherwise) that it reproduces. They are the tests' own reading of that source,
independent of flinkmem's code, so that a test's expectation never comes from flinkmem itself.

- `bluegreen_child`: the FlinkDeployment a FlinkBlueGreenDeployment deploys
  (`BlueGreenUtils.prepareFlinkDeployment`, `BlueGreenKubernetesService.getDependentObjectMeta`).
- `MEMORY_TUNING_CHANGES`: a `ConfigChanges` the autoscaler's memory tuning makes, exactly as its own test
  pins it (`MemoryTuningTest.testMemoryTuning`, flink-autoscaler, for a TaskManager of "30 gb").
- `realize_config_overrides`: how the operator applies such changes to the spec it deploys
  (`KubernetesScalingRealizer.realizeConfigOverrides`, called from `JobAutoScalerImpl.applyConfigOverrides`).
- `autoscaler_configmap`: where the autoscaler keeps them (`ConfigMapStore`, `KubernetesAutoScalerStateStore`).
- `deployed_configuration` and `flink_configmap`: the effective configuration the operator deploys for a
  FlinkDeployment that sets memory with `resource` and flat `flinkConfiguration` keys (`FlinkConfigBuilder`:
  `applyFlinkConfiguration`, then `setResource` with `parseResourceMemoryString`), and the ConfigMap
  `flink-config-<name>` that carries it (`FlinkConfMountDecorator`: `config.yaml` from Flink 2.0 on, else
  `flink-conf.yaml`; labels of Flink's native decorators).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = [
    "MEMORY_TUNING_CHANGES",
    "autoscaler_configmap",
    "bluegreen_child",
    "deployed_configuration",
    "flink_configmap",
    "memory_size_text",
    "realize_config_overrides",
]

# MemoryTuningTest.testMemoryTuning (release-1.15.0): the first ConfigChanges it asserts ("Test reducing
# overall memory"), for taskmanager.memory.process.size "30 gb". Removals are TOTAL_FLINK_MEMORY,
# TASK_HEAP_MEMORY, MANAGED_MEMORY_SIZE and MANAGED_MEMORY_SIZE's fallback key.
MEMORY_TUNING_CHANGES: dict[str, Any] = {
    "overrides": {
        "taskmanager.memory.managed.fraction": "0.654",
        "taskmanager.memory.network.min": "13760 kb",
        "taskmanager.memory.network.max": "13760 kb",
        "taskmanager.memory.jvm-metaspace.size": "120 mb",
        "taskmanager.memory.jvm-overhead.fraction": "0.054",
        "taskmanager.memory.framework.heap.size": "0 bytes",
        "taskmanager.memory.process.size": "20108162027 bytes",
    },
    "removals": [
        "taskmanager.memory.flink.size",
        "taskmanager.memory.task.heap.size",
        "taskmanager.memory.managed.size",
        "taskmanager.memory.size",
    ],
}

_UNITS = ((1 << 40, "tb"), (1 << 30, "gb"), (1 << 20, "mb"), (1 << 10, "kb"))
_FLINK_UNITS = {"": 1, "b": 1, "bytes": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20}
_FLINK_UNITS |= {"g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40}


def _flink_bytes(text: str) -> int:
    """Flink's MemorySize.parse for the plain texts these tests write (digits, optional space, a unit)."""
    stripped = text.strip()
    digits = stripped[: len(stripped) - len(stripped.lstrip("0123456789"))]
    return int(digits) * _FLINK_UNITS[stripped[len(digits) :].strip().lower()]


def memory_size_text(size: int) -> str:
    """MemorySize.toString(): the count in the largest unit that divides it exactly ("1792 mb"), else bytes."""
    for multiplier, unit in _UNITS:
        if size and size % multiplier == 0:
            return f"{size // multiplier} {unit}"
    return f"{size} bytes"


def bluegreen_child(bluegreen: Mapping[str, Any], color: str = "blue") -> dict[str, Any]:
    """BlueGreenUtils.prepareFlinkDeployment (release-1.15.0 l.316-383) for a first deployment: the template's
    spec unchanged (its job's initial savepoint path is kept), named `<name>-<color>`, labelled with
    BlueGreenDeploymentType.LABEL_KEY; metadata from getDependentObjectMeta (BlueGreenKubernetesService
    l.41-55): the parent's namespace and one owner reference (blockOwnerDeletion true, controller false)."""
    meta = bluegreen["metadata"]
    spec = copy.deepcopy(bluegreen["spec"]["template"]["spec"])
    ingress = spec.get("ingress")
    if ingress is not None and ingress.get("template") is not None:
        ingress["template"] = f"{color}-{ingress['template']}"
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {
            "name": f"{meta['name']}-{color}",
            "namespace": meta.get("namespace"),
            "labels": {"flink/blue-green-deployment-type": color.upper()},
            "ownerReferences": [
                {
                    "apiVersion": bluegreen["apiVersion"],
                    "kind": bluegreen["kind"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "blockOwnerDeletion": True,
                    "controller": False,
                }
            ],
        },
        "spec": spec,
    }


def realize_config_overrides(deployment: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """KubernetesScalingRealizer.realizeConfigOverrides (release-1.15.0): the FlinkDeployment as the operator
    deploys it, never as the API server stores it. The removals go (flat keys: ConfigObjectNode.remove acts on
    top-level keys), the overrides are put, and when the total memory of the result
    (MemoryTuning.getTotalMemory: its taskmanager.memory.process.size) differs from
    taskManager.resource.memory (read with parseResourceMemoryString), that becomes String.valueOf(bytes).
    Only the Flink-syntax memory strings these tests use are read here."""
    deployed = copy.deepcopy(dict(deployment))
    spec = deployed["spec"]
    config = spec.setdefault("flinkConfiguration", {})
    for key in changes["removals"]:
        config.pop(key, None)
    config.update(changes["overrides"])
    total = _flink_bytes(config["taskmanager.memory.process.size"])
    resource = spec["taskManager"]["resource"]  # the realizer of 1.15.0 needs it (NPE otherwise)
    if total > 0 and total != _flink_bytes(resource["memory"]):
        resource["memory"] = str(total)
    return deployed


def autoscaler_configmap(deployment: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The autoscaler's state ConfigMap (ConfigMapStore: `autoscaler-<name>`, labels component=autoscaler and
    app=<name>, owned by the FlinkDeployment) holding the changes under `configOverrides`
    (KubernetesAutoScalerStateStore.CONFIG_OVERRIDES_KEY; its fields `overrides` and `removals`)."""
    meta = deployment["metadata"]
    text = "---\n" + yaml.safe_dump(
        {"overrides": dict(changes["overrides"]), "removals": list(changes["removals"])}, sort_keys=False
    )
    configmap: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"autoscaler-{meta['name']}",
            "namespace": meta.get("namespace"),
            "labels": {"component": "autoscaler", "app": meta["name"]},
        },
        "data": {"configOverrides": text},
    }
    if meta.get("uid"):
        configmap["metadata"]["ownerReferences"] = [
            {
                "apiVersion": deployment["apiVersion"],
                "kind": deployment["kind"],
                "name": meta["name"],
                "uid": meta["uid"],
            }
        ]
    return configmap


def deployed_configuration(deployment: Mapping[str, Any]) -> dict[str, str]:
    """FlinkConfigBuilder.buildFrom for a FlinkDeployment with flat flinkConfiguration keys and `resource`:
    the configuration, then each role's resource.memory over its process size as parseResourceMemoryString
    writes it (MemorySize.parse(..).toString() for these Flink-syntax texts) and resource.cpu over
    kubernetes.<role>.cpu.amount (a Double: "1.0"). The operator's own default configuration is left out."""
    spec = deployment["spec"]
    config = {key: str(value) for key, value in (spec.get("flinkConfiguration") or {}).items()}
    for field, role in (("jobManager", "jobmanager"), ("taskManager", "taskmanager")):
        resource = (spec.get(field) or {}).get("resource") or {}
        if resource.get("memory") is not None:
            config[f"{role}.memory.process.size"] = memory_size_text(_flink_bytes(str(resource["memory"])))
        if resource.get("cpu") is not None:
            config[f"kubernetes.{role}.cpu.amount"] = json.dumps(float(resource["cpu"]))
    return config


def flink_configmap(deployment: Mapping[str, Any], configuration: Mapping[str, str]) -> dict[str, Any]:
    """The ConfigMap `flink-config-<name>` that Flink's native decorators (through the operator's
    FlinkConfMountDecorator) write with the deployed configuration: `config.yaml` for Flink 2.x and
    `flink-conf.yaml` (key: value lines) before, labelled app=<name>, type=flink-native-kubernetes."""
    meta = deployment["metadata"]
    version = str(deployment["spec"]["flinkVersion"])
    new_file = version.startswith("v2")
    lines = "".join(f"{key}: {value}\n" for key, value in configuration.items())
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"flink-config-{meta['name']}",
            "namespace": meta.get("namespace"),
            "labels": {"app": meta["name"], "type": "flink-native-kubernetes"},
        },
        "data": {("config.yaml" if new_file else "flink-conf.yaml"): lines},
    }
