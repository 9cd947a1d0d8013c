"""The Apache operator's surface through a real kube-apiserver: FlinkBlueGreenDeployments, `resources`, and
TaskManagers its autoscaler tunes (issue 20).

The operator's CRDs are flinkmem's stand-ins by default, as in CI, or the operator's own with
`FLINKMEM_OPERATOR_CRDS=<dir>` (tests/support/operatorcrds.py, docs/development.md). The operator itself
does not run: what it would create (a blue/green deployment's child, the autoscaler's ConfigMap, Flink's
ConfigMap of what it deploys) is made as its source makes it (tests/support/apacheoperator.py, each
function naming where in its source). Expected memory comes from real Flink (the reference harness).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from flinkmem.sources.quantity import quantity_bytes
from localplane.controlplane import Cluster, wait_until
from localplane.serve import RunningOperator, running_flinkmem
from tests.differential.flinkref import run_reference
from tests.e2e.test_webhooks import apply, container, env_of, get, jobmanager_deployment, wait_pod
from tests.support.apacheoperator import (
    MEMORY_TUNING_CHANGES,
    autoscaler_configmap,
    bluegreen_child,
    deployed_configuration,
    flink_configmap,
    realize_config_overrides,
)
from tests.support.operatorcrds import InstalledCrds, operator_crds

pytestmark = pytest.mark.e2e

MIB = 1 << 20
REFUSED_BG = 'admission webhook "validate-flinkbluegreendeployment.flinkmem.io" denied the request'
JM_CONFLICT = {"jobmanager.memory.heap.size": "2g"}  # with JobManager memory 1g
TM_CONFLICT = {"taskmanager.memory.managed.size": "4g"}  # with TaskManager memory 1728m
TUNING = {"job.autoscaler.enabled": "true", "job.autoscaler.memory.tuning.enabled": "true"}


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> Iterator[InstalledCrds]:
    with operator_crds(cluster) as installed:
        yield installed


@pytest.fixture(scope="module")
def flinkmem(
    cluster: Cluster, crds: InstalledCrds, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningOperator]:
    with running_flinkmem(cluster.kubeconfig, tmp_path_factory.mktemp("flinkmem")) as operator:
        yield operator


def template(config: dict[str, str], jm_memory: str = "2g", tm_memory: str = "1728m") -> dict[str, Any]:
    """A FlinkDeployment spec valid under the operator's 1.15.0 and main-branch CRDs alike."""
    return {
        "flinkVersion": "v1_20",
        "flinkConfiguration": config,
        "jobManager": {"resource": {"memory": jm_memory, "cpu": 1}},
        "taskManager": {"resource": {"memory": tm_memory, "cpu": 1}},
        "job": {"jarURI": "local:///opt/flink/examples/streaming/StateMachineExample.jar", "parallelism": 1},
    }


def bluegreen(name: str, config: dict[str, str], jm_memory: str = "2g", tm_memory: str = "1728m") -> dict[str, Any]:
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkBlueGreenDeployment",
        "metadata": {"name": name},
        "spec": {
            "configuration": {"kubernetes.operator.bluegreen.deployment-deletion.delay": "1s"},
            "template": {"spec": template(config, jm_memory, tm_memory)},
        },
    }


def mebibytes(quantity: str) -> float:
    """A pod's memory quantity in MiB (the API server writes 2048Mi as 2Gi)."""
    return quantity_bytes(quantity) / MIB


def events(cluster: Cluster, namespace: str, reason: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", f"reason={reason}", "-o", "json")
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def resolved(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    obj = get(cluster, namespace, kind, name)
    text = (obj or {}).get("metadata", {}).get("annotations", {}).get("flinkmem.io/resolved-memory")
    return json.loads(text) if text else None


def jm_reference(config: dict[str, str], version: str = "1.20.3") -> dict[str, Any]:
    reference = run_reference(version, [{"id": 1, "config": config, "flinkVersion": version}])[0]
    assert reference["valid"], reference
    return reference


# --- FlinkBlueGreenDeployment -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "jm", "tm", "fragment"),
    [
        (JM_CONFLICT, "1g", "1728m", "JobManager: jobmanager.memory.process.size (1 GiB)"),
        (TM_CONFLICT, "2g", "1728m", "TaskManager: "),
    ],
    ids=["jobmanager", "taskmanager"],
)
def test_blue_green_conflicts_are_refused_at_apply_on_create_and_update(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, config: dict[str, str], jm: str, tm: str, fragment: str
) -> None:
    created = apply(cluster, namespace, bluegreen("orders", config, jm, tm))
    assert created.returncode != 0 and REFUSED_BG in created.stderr, created.stderr
    assert f"flinkmem refused FlinkBlueGreenDeployment {namespace}/orders" in created.stderr
    assert "(its spec.template.spec, which the operator deploys as FlinkDeployment orders-blue)" in created.stderr
    assert fragment in created.stderr and "Fix:" in created.stderr
    assert get(cluster, namespace, "flinkbluegreendeployment", "orders") is None

    assert apply(cluster, namespace, bluegreen("orders", {})).returncode == 0
    updated = apply(cluster, namespace, bluegreen("orders", config, jm, tm))
    assert updated.returncode != 0 and REFUSED_BG in updated.stderr and fragment in updated.stderr
    stored = get(cluster, namespace, "flinkbluegreendeployment", "orders")
    assert stored is not None and stored["spec"]["template"]["spec"]["flinkConfiguration"] == {}
    wait_until(lambda: events(cluster, namespace, "MemoryRefused"), what="a MemoryRefused event on the update")


def test_a_valid_blue_green_deployment_is_annotated_and_its_childs_pods_are_sized(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    config = {"kubernetes.jobmanager.memory.limit-factor": "1.5", "jobmanager.memory.jvm-overhead.fraction": "0.2"}
    result = apply(cluster, namespace, bluegreen("shop", config, jm_memory="3000m"))
    assert result.returncode == 0, result.stderr
    reference = jm_reference({**config, "jobmanager.memory.process.size": "3000m"})

    # The controller records what the template deploys, on the blue/green deployment, with an Event.
    found = wait_until(lambda: resolved(cluster, namespace, "flinkbluegreendeployment", "shop"), what="its annotation")
    assert found["valid"] and found["jobmanager"]["memory"]["jvmArgs"] == reference["jvmArgs"]
    wait_until(
        lambda: [e for e in events(cluster, namespace, "MemoryResolved") if e["involvedObject"]["name"] == "shop"],
        what="MemoryResolved on the blue/green deployment",
    )
    labelled = cluster.kubectl("label", "flinkbluegreendeployment", "shop", "-n", namespace, "team=web", check=False)
    assert labelled.returncode == 0, labelled.stderr

    # The child the operator creates from it (BlueGreenUtils.prepareFlinkDeployment) is an ordinary FlinkDeployment.
    parent = get(cluster, namespace, "flinkbluegreendeployment", "shop")
    assert parent is not None
    child = bluegreen_child(parent)
    created = cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(child), check=False)
    assert created.returncode == 0, created.stderr
    stored = get(cluster, namespace, "flinkdeployment", "shop-blue")
    assert stored is not None
    assert stored["metadata"]["labels"] == {"flink/blue-green-deployment-type": "BLUE"}
    assert stored["metadata"]["ownerReferences"][0]["uid"] == parent["metadata"]["uid"]
    annotated = wait_until(lambda: resolved(cluster, namespace, "flinkdeployment", "shop-blue"), what="the child's")
    assert annotated["jobmanager"] == found["jobmanager"]

    # Its JobManager's pod (named after the child: Flink's app label) is sized to real Flink's derivation.
    assert apply(cluster, namespace, jobmanager_deployment("shop-blue")).returncode == 0
    pod = wait_pod(cluster, namespace, "shop-blue")
    main = container(pod, "flink-main-container")
    assert pod["metadata"]["annotations"]["flinkmem.io/jvm-flags"] == reference["jvmArgs"]
    total = reference["totalProcessMemory"]
    assert mebibytes(main["resources"]["requests"]["memory"]) == math.ceil(total / MIB)
    assert mebibytes(main["resources"]["limits"]["memory"]) == math.ceil(total * 1.5 / MIB)


# --- spec.<role>.resources ------------------------------------------------------------------------------


def resources_deployment(name: str, jm: dict[str, Any], config: dict[str, str] | None = None) -> dict[str, Any]:
    spec = template(config or {})
    spec["jobManager"] = jm
    spec["taskManager"] = {"resources": {"requests": {"memory": "2Gi", "cpu": "1"}}}
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_flinkdeployments_with_resources_resolve_as_the_operator_configures_flink(
    cluster: Cluster, namespace: str, crds: InstalledCrds, flinkmem: RunningOperator
) -> None:
    if not crds.resources_field:
        pytest.skip(f"the FlinkDeployment CRD of {crds.origin} has no spec.jobManager.resources (a release before it)")
    # The case of issue 20: the heap alone was read, and this was admitted.
    issue = resources_deployment(
        "issue", {"resources": {"requests": {"memory": "2Gi"}}}, {"jobmanager.memory.heap.size": "3g"}
    )
    refused = apply(cluster, namespace, issue)
    assert refused.returncode != 0 and "JobManager: jobmanager.memory.process.size (2 GiB)" in refused.stderr

    above = resources_deployment("above", {"resources": {"requests": {"memory": "4Gi"}, "limits": {"memory": "2Gi"}}})
    refused = apply(cluster, namespace, above)
    assert refused.returncode != 0
    assert "spec.jobManager.resources.requests.memory: 4Gi is above limits.memory 2Gi" in refused.stderr

    jm = {
        "resource": {"memory": "1g", "cpu": 1},
        "resources": {"requests": {"memory": "2Gi", "cpu": "500m"}, "limits": {"memory": "3Gi", "cpu": "1"}},
    }
    result = apply(cluster, namespace, resources_deployment("sized", jm))
    assert result.returncode == 0, result.stderr
    text = " ".join(line.removeprefix("Warning: ") for line in result.stderr.splitlines())
    assert "jobManager.resource (cpu=1, memory=1g) is ignored" in text, result.stderr
    # FlinkConfigBuilder.setResourceRequirements: the request over the process size, limits/requests (3Gi / 2Gi)
    # over the limit factor (its tests: requests 1Gi / limits 2048Mi make 2.0).
    reference = jm_reference(
        {"jobmanager.memory.process.size": "2147483648", "kubernetes.jobmanager.memory.limit-factor": "1.5"}
    )
    assert apply(cluster, namespace, jobmanager_deployment("sized")).returncode == 0
    pod = wait_pod(cluster, namespace, "sized")
    main = container(pod, "flink-main-container")
    assert pod["metadata"]["annotations"]["flinkmem.io/jvm-flags"] == reference["jvmArgs"]
    assert mebibytes(main["resources"]["requests"]["memory"]) == reference["k8s"]["k8sMemoryMiB"] == 2048
    assert mebibytes(main["resources"]["limits"]["memory"]) == reference["k8s"]["k8sLimitMiB"] == 3072


# --- autoscaler memory tuning ------------------------------------------------------------------------------


def tuned_deployment(name: str, mode: str) -> dict[str, Any]:
    spec = template(TUNING, jm_memory="2g", tm_memory="30g")
    spec["mode"] = mode
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def tm_pod(name: str, mode: str, args: list[str], env: list[dict[str, str]], memory: str) -> dict[str, Any]:
    labels = {"app": name, "component": "taskmanager", "type": f"flink-{mode}-kubernetes"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{name}-taskmanager-1-1", "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "flink-main-container",
                    "image": "flink:1.20.3",
                    "args": args,
                    "env": env,
                    "resources": {"requests": {"memory": memory}, "limits": {"memory": memory}},
                }
            ],
        },
    }


@pytest.mark.parametrize("mode", ["standalone", "native"])
def test_taskmanagers_of_an_autoscaler_tuned_deployment_keep_the_tuned_memory(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, mode: str
) -> None:
    name = f"tuned-{mode}"
    assert apply(cluster, namespace, tuned_deployment(name, mode)).returncode == 0
    stored = get(cluster, namespace, "flinkdeployment", name)
    assert stored is not None
    # What the operator deploys once the autoscaler has tuned the TaskManagers, and where it keeps the tuning.
    deployed = deployed_configuration(realize_config_overrides(stored, MEMORY_TUNING_CHANGES))
    for configmap in (autoscaler_configmap(stored, MEMORY_TUNING_CHANGES), flink_configmap(stored, deployed)):
        assert apply(cluster, namespace, configmap).returncode == 0
    record = {"id": 1, "role": "taskmanager", "config": deployed, "flinkVersion": "1.20", "mode": mode}
    reference = run_reference("1.20.3", [record], verify=mode == "native")[0]
    assert reference["valid"], reference
    total = reference["totalProcessMemory"]
    assert total == 20108162027  # the autoscaler's process size, as Flink reads it

    if mode == "standalone":
        # The operator's TaskManager Deployment: the JVM is sized in the pod from the mounted ConfigMap.
        pod = tm_pod(name, mode, ["taskmanager"], [], f"{total // MIB}Mi")
        expected_flags = reference["jvmArgs"]
    else:
        built = reference["k8s"]  # the pod Flink's own KubernetesTaskManagerFactory builds from it
        _, _, script = built["args"].partition("bash -c ")
        env = [{"name": "FLINK_TM_JVM_MEM_OPTS", "value": built["jvmMemOpts"]}]
        pod = tm_pod(name, mode, ["bash", "-c", script], env, built["memory"])
        expected_flags = built["jvmMemOpts"]
    assert apply(cluster, namespace, pod).returncode == 0
    admitted = get(cluster, namespace, "pod", pod["metadata"]["name"])
    assert admitted is not None
    main = container(admitted, "flink-main-container")
    annotations = admitted["metadata"]["annotations"]
    assert annotations["flinkmem.io/jvm-flags"] == expected_flags
    assert (
        json.loads(annotations["flinkmem.io/resolved-memory"])["source"] == f"ConfigMap {namespace}/flink-config-{name}"
    )
    # Never the FlinkDeployment's 30 GiB: the tuned size, in whole MiB rounded up.
    assert (
        main["resources"]["requests"]["memory"]
        == main["resources"]["limits"]["memory"]
        == f"{math.ceil(total / MIB)}Mi"
    )
    assert "FLINK_ENV_JAVA_OPTS_TM" not in env_of(main)

    # The difference between the FlinkDeployment and what runs is told once, as expected.
    differs = wait_until(
        lambda: [e for e in events(cluster, namespace, "MemoryConfigDiffers") if e["involvedObject"]["name"] == name],
        what="MemoryConfigDiffers on the FlinkDeployment",
    )
    assert len(differs) == 1 and differs[0]["type"] == "Normal"
    assert differs[0]["message"].startswith("the operator's autoscaler tuned TaskManager memory")
    spec = get(cluster, namespace, "flinkdeployment", name)
    assert spec is not None and spec["spec"] == stored["spec"]  # never "fixed"
