"""flinkmem against a real kube-apiserver: the validating and mutating webhooks and the controller.

Every request goes through the real API server (TLS to the webhook, AdmissionReview, JSON patch,
dry-run, kubectl warnings), and the JobManager pods are made by the real Deployment controller.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkmem.runtime.cluster import Cluster as ApiCluster
from flinkmem.runtime.credentials import load_credentials
from flinkmem.runtime.devsetup import register_webhooks
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.settings import Settings
from localplane.controlplane import Cluster, wait_until
from localplane.serve import RunningOperator, running_flinkmem
from tests.differential.flinkref import run_reference

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MIB = 1 << 20


@pytest.fixture(scope="module")
def flinkmem(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    with running_flinkmem(cluster.kubeconfig, tmp_path_factory.mktemp("flinkmem")) as operator:
        yield operator


def apply(cluster: Cluster, namespace: str, obj: dict[str, Any] | Path, *extra: str) -> Any:
    text = obj.read_text() if isinstance(obj, Path) else json.dumps(obj)
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", *extra, input=text, check=False)


def get(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def flinkdeployment(
    name: str, config: dict[str, str], memory: str | None = "2g", version: str = "v2_1", tm_memory: str = "1728m"
) -> dict[str, Any]:
    jm: dict[str, Any] = {"resource": {"cpu": 1}}
    if memory:
        jm["resource"]["memory"] = memory
    tm = {"resource": {"cpu": 1, "memory": tm_memory}}
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name},
        "spec": {"flinkVersion": version, "flinkConfiguration": config, "jobManager": jm, "taskManager": tm},
    }


def jobmanager_deployment(name: str) -> dict[str, Any]:
    labels = {"app": name, "component": "jobmanager", "type": "flink-native-kubernetes"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "busybox", "resources": {"limits": {"memory": "64Mi"}}},
                        {"name": "flink-main-container", "image": "flink:2.1", "resources": {"requests": {"cpu": "1"}}},
                    ]
                },
            },
        },
    }


def wait_pod(cluster: Cluster, namespace: str, app: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items[0] if items else None

    return wait_until(find, what=f"a pod of {app}")


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in pod["spec"]["containers"] if c["name"] == name)
    return found


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c.get("env", [])}


@pytest.mark.parametrize("example", ["01-valid-resource-memory.yaml", "02-valid-nested-configuration.yaml"])
def test_valid_manifests_are_accepted(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, example: str
) -> None:
    result = apply(cluster, namespace, EXAMPLES / example)
    assert result.returncode == 0, result.stderr
    assert "flinkmem" not in result.stderr


def test_warnings_reach_kubectl(cluster: Cluster, namespace: str, flinkmem: RunningOperator) -> None:
    result = apply(cluster, namespace, EXAMPLES / "03-valid-with-warnings.yaml")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert any("replaces jobmanager.memory.process.size=4g" in w for w in warnings), result.stderr
    assert any("jvm-metaspace.size=268435456 has no unit" in w for w in warnings), result.stderr
    # kubectl prints "Warning: " before each; our part stays within 120 characters.
    assert all(len(w.removeprefix("Warning: ")) <= 120 for w in warnings)


def test_taskmanager_warnings_reach_kubectl(cluster: Cluster, namespace: str, flinkmem: RunningOperator) -> None:
    result = apply(cluster, namespace, EXAMPLES / "05-valid-taskmanager-warnings.yaml")
    assert result.returncode == 0, result.stderr
    text = " ".join(line.removeprefix("Warning: ") for line in result.stderr.splitlines())
    assert "capped at taskmanager.memory.network.max 128 MiB" in text, result.stderr
    assert "RocksDB" in text, result.stderr


def test_template_memory_flink_replaces_is_admitted_with_a_warning(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    result = apply(cluster, namespace, EXAMPLES / "04-valid-template-memory-replaced.yaml")
    assert result.returncode == 0, result.stderr
    text = " ".join(line.removeprefix("Warning: ") for line in result.stderr.splitlines())
    assert "memory limit 1Gi is not used" in text and "2048Mi" in text, result.stderr


@pytest.mark.parametrize(
    ("example", "fragments"),
    [
        ("10-conflict-heap-larger-than-process.yaml", ["jobmanager.memory.process.size (1 GiB)", "Fix:"]),
        ("11-conflict-process-too-small.yaml", ["jobmanager.memory.off-heap.size", "nothing is left"]),
        ("12-conflict-overhead-range.yaml", ["jvm-overhead.min (512 MiB)", "jvm-overhead.max (256 MiB)"]),
        ("13-conflict-heap-off-heap-mismatch.yaml", ["jobmanager.memory.flink.size is 1 GiB"]),
        ("14-conflict-derived-overhead.yaml", ["outside the allowed range [150 MiB, 1 GiB]"]),
        ("15-conflict-invalid-value.yaml", ["'1.5g'", "'.5g' is not a memory unit"]),
        ("17-conflict-java-opts-xmx.yaml", ["env.java.opts.jobmanager sets -Xmx3g"]),
        ("18-conflict-limit-factor.yaml", ["kubernetes.jobmanager.memory.limit-factor is 0.5"]),
        ("20-conflict-taskmanager-process-too-small.yaml", ["TaskManager: ", "at least 982 MiB"]),
        ("21-conflict-taskmanager-network-range.yaml", ["TaskManager: taskmanager.memory.network.min (512 MiB)"]),
        ("22-conflict-taskmanager-task-heap.yaml", ["TaskManager: ", "taskmanager.memory.task.heap.size"]),
    ],
)
def test_each_conflict_is_refused_with_its_reason(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, example: str, fragments: list[str]
) -> None:
    name = yaml.safe_load((EXAMPLES / example).read_text())["metadata"]["name"]
    result = apply(cluster, namespace, EXAMPLES / example)
    assert result.returncode != 0
    assert 'admission webhook "validate-flinkdeployment.flinkmem.io" denied the request' in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert get(cluster, namespace, "flinkdeployment", name) is None


def test_server_side_dry_run_gives_the_same_answer_without_side_effects(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    refused = apply(cluster, namespace, EXAMPLES / "10-conflict-heap-larger-than-process.yaml", "--dry-run=server")
    assert refused.returncode != 0 and "flinkmem refused" in refused.stderr
    accepted = apply(cluster, namespace, EXAMPLES / "03-valid-with-warnings.yaml", "--dry-run=server")
    assert accepted.returncode == 0 and "(server dry run)" in accepted.stdout
    assert "replaces jobmanager.memory.process.size" in accepted.stderr
    assert get(cluster, namespace, "flinkdeployment", "clicks") is None
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert json.loads(events)["items"] == []


def test_update_into_a_conflict_is_refused(cluster: Cluster, namespace: str, flinkmem: RunningOperator) -> None:
    good = flinkdeployment("upd", {"jobmanager.memory.heap.size": "1g"}, memory="2g")
    assert apply(cluster, namespace, good).returncode == 0
    bad = flinkdeployment("upd", {"jobmanager.memory.heap.size": "4g"}, memory="2g")
    result = apply(cluster, namespace, bad)
    assert result.returncode != 0 and "flinkmem refused" in result.stderr
    stored = get(cluster, namespace, "flinkdeployment", "upd")
    assert stored is not None
    assert stored["spec"]["flinkConfiguration"]["jobmanager.memory.heap.size"] == "1g"


def _register_again(cluster: Cluster, flinkmem: RunningOperator) -> None:
    """What `flinkmem serve --register-url` does at its start, as the cluster's administrator."""
    settings = Settings(self_signed_dir=flinkmem.cert_dir)

    async def register() -> None:
        api = ApiCluster(settings, Metrics(), load_credentials({"KUBECONFIG": str(cluster.kubeconfig)}))
        try:
            await register_webhooks(api, settings, flinkmem.webhook_url, flinkmem.ca_file)
        finally:
            await api.close()

    asyncio.run(register())


def test_existing_conflict_allows_metadata_updates_and_deletion(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    conflicting = flinkdeployment("old-conflict", {"jobmanager.memory.heap.size": "2g"}, memory="1g")
    # Store it as if it predated flinkmem: without its webhooks for a moment (the record webhook included,
    # or the object would come with its record, and the controller would find nothing to write or tell).
    cluster.kubectl("delete", "validatingwebhookconfiguration", "flinkmem")
    cluster.kubectl("delete", "mutatingwebhookconfiguration", "flinkmem")
    try:
        assert apply(cluster, namespace, conflicting).returncode == 0
    finally:
        _register_again(cluster, flinkmem)
    wait_until(
        lambda: "flinkmem refused" in apply(cluster, namespace, flinkdeployment("probe", {}, memory="100m")).stderr,
        what="the validating webhook back in place",
    )
    labelled = cluster.kubectl("label", "flinkdeployment", "old-conflict", "-n", namespace, "team=data", check=False)
    assert labelled.returncode == 0, labelled.stderr
    assert "memory conflict left as it was" in labelled.stderr
    annotated = cluster.kubectl("annotate", "flinkdeployment", "old-conflict", "-n", namespace, "a=b", check=False)
    assert annotated.returncode == 0, annotated.stderr
    changed = flinkdeployment("old-conflict", {"jobmanager.memory.heap.size": "3g"}, memory="1g")
    assert apply(cluster, namespace, changed).returncode != 0
    deleted = cluster.kubectl("delete", "flinkdeployment", "old-conflict", "-n", namespace, check=False)
    assert deleted.returncode == 0, deleted.stderr
    # The controller reported the conflict while the object existed.
    wait_until(
        lambda: (
            "MemoryConflict"
            in cluster.kubectl("get", "events", "-n", namespace, "--field-selector", "reason=MemoryConflict").stdout
        ),
        what="a MemoryConflict event",
    )


def test_jobmanager_pod_gets_the_memory_real_flink_derives(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    config = {
        "jobmanager.memory.jvm-overhead.fraction": "0.25",
        "jobmanager.memory.enable-jvm-direct-memory-limit": "true",
        "kubernetes.jobmanager.memory.limit-factor": "1.5",
    }
    assert apply(cluster, namespace, flinkdeployment("sized", config, memory="3000m")).returncode == 0
    assert apply(cluster, namespace, jobmanager_deployment("sized")).returncode == 0
    pod = wait_pod(cluster, namespace, "sized")

    reference = run_reference(
        "2.3.0",
        [{"id": 1, "config": {**config, "jobmanager.memory.process.size": "3000m"}, "flinkVersion": "2.3"}],
    )[0]
    assert reference["valid"], reference
    main = container(pod, "flink-main-container")
    # Flink's start script computes these flags itself; the options carry no memory flag to override.
    assert pod["metadata"]["annotations"]["flinkmem.io/jvm-flags"] == reference["jvmArgs"]
    assert "FLINK_ENV_JAVA_OPTS_JM" not in env_of(main)
    request_mib = math.ceil(reference["totalProcessMemory"] / MIB)
    assert main["resources"]["requests"]["memory"] == f"{request_mib}Mi"
    assert main["resources"]["limits"]["memory"] == f"{math.ceil(reference['totalProcessMemory'] * 1.5 / MIB)}Mi"
    assert main["resources"]["requests"]["cpu"] == "1"
    assert container(pod, "sidecar")["resources"] == {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}}
    assert "env" not in container(pod, "sidecar")
    annotations = pod["metadata"]["annotations"]
    assert annotations["flinkmem.io/jvm-flags"] == reference["jvmArgs"]
    assert json.loads(annotations["flinkmem.io/resolved-memory"])["jvmHeap"] == reference["jvmHeap"]

    # The controller recorded the same breakdown on the FlinkDeployment, with a Normal event.
    def resolved() -> dict[str, Any] | None:
        obj = get(cluster, namespace, "flinkdeployment", "sized")
        text = (obj or {}).get("metadata", {}).get("annotations", {}).get("flinkmem.io/resolved-memory")
        return json.loads(text) if text else None

    found = wait_until(resolved, what="the resolved-memory annotation")
    assert found["jobmanager"]["memory"]["jvmArgs"] == reference["jvmArgs"]
    stored = get(cluster, namespace, "flinkdeployment", "sized")
    assert stored is not None and "status" not in stored


def test_the_resolved_memory_comes_with_the_create_and_its_event_names_the_object(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    manifest = json.dumps(flinkdeployment("recorded", {}, memory="2g"))
    created = json.loads(cluster.kubectl("create", "-n", namespace, "-f", "-", "-o", "json", input=manifest).stdout)
    # The object the create stored already carries the record: no PATCH afterwards.
    annotation = json.loads(created["metadata"]["annotations"]["flinkmem.io/resolved-memory"])
    assert annotation["valid"] is True and annotation["jobmanager"]["memory"]["totalProcessMemory"] == 2 * 1024**3

    def told() -> list[dict[str, Any]]:
        out = cluster.kubectl(
            "get", "events", "-n", namespace, "--field-selector", "reason=MemoryResolved", "-o", "json"
        )
        return [e for e in json.loads(out.stdout)["items"] if e["involvedObject"]["name"] == "recorded"]

    events = wait_until(told, what="the MemoryResolved event of the FlinkDeployment created")
    assert [e["involvedObject"]["uid"] for e in events] == [created["metadata"]["uid"]]
    assert events[0]["type"] == "Normal" and "total process 2 GiB" in events[0]["message"]
    # Nothing rewrote it since (the controller finds the record it would write).
    stored = get(cluster, namespace, "flinkdeployment", "recorded")
    assert stored is not None and stored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_taskmanager_pod_built_by_real_flink_gets_the_memory_real_flink_derives(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    """The pod is the one Flink's own KubernetesTaskManagerFactory builds (reference harness, --verify):
    its -D options and FLINK_TM_JVM_MEM_OPTS; flinkmem must agree with them and size the container."""
    config = {"kubernetes.taskmanager.memory.limit-factor": "1.25", "taskmanager.numberOfTaskSlots": "2"}
    deployment = flinkdeployment("tm-sized", config, tm_memory="4g")
    deployment["spec"]["taskManager"]["resource"]["cpu"] = 2
    assert apply(cluster, namespace, deployment).returncode == 0
    record = {
        "id": 1,
        "role": "taskmanager",
        "config": {**config, "taskmanager.memory.process.size": "4g", "kubernetes.taskmanager.cpu.amount": "2.0"},
        "flinkVersion": "2.3",
        "mode": "native",
    }
    reference = run_reference("2.3.0", [record], verify=True)[0]
    assert reference["valid"], reference
    built = reference["k8s"]
    _, _, script = built["args"].partition("bash -c ")
    labels = {"app": "tm-sized", "component": "taskmanager", "type": "flink-native-kubernetes"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tm-sized-taskmanager-1-1", "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "flink-main-container",
                    "image": "flink:2.3.0",
                    "args": ["bash", "-c", script],
                    "env": [{"name": "FLINK_TM_JVM_MEM_OPTS", "value": built["jvmMemOpts"]}],
                    "resources": {"requests": {"memory": built["memory"]}, "limits": {"memory": "5120Mi"}},
                }
            ],
        },
    }
    assert apply(cluster, namespace, pod).returncode == 0
    admitted = get(cluster, namespace, "pod", "tm-sized-taskmanager-1-1")
    assert admitted is not None
    main = container(admitted, "flink-main-container")
    env = env_of(main)
    # The derived flags are the JobManager's own (FLINK_TM_JVM_MEM_OPTS): flinkmem never contradicts them.
    assert admitted["metadata"]["annotations"]["flinkmem.io/jvm-flags"] == reference["jvmArgs"] == built["jvmMemOpts"]
    assert env["FLINK_TM_JVM_MEM_OPTS"] == built["jvmMemOpts"] and "FLINK_ENV_JAVA_OPTS_TM" not in env
    assert main["resources"]["requests"]["memory"] in ("4Gi", f"{math.ceil(reference['totalProcessMemory'] / MIB)}Mi")
    assert main["resources"]["limits"]["memory"] in ("5Gi", "5120Mi")  # int(4096 x 1.25), already what Flink set
    annotation = json.loads(admitted["metadata"]["annotations"]["flinkmem.io/resolved-memory"])
    assert annotation["role"] == "taskmanager"
    assert annotation["dynamicConfigs"] == reference["dynamicConfigs"]


def test_admitting_the_same_pod_twice_changes_nothing(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    assert apply(cluster, namespace, flinkdeployment("twice", {}, memory="2g")).returncode == 0
    assert apply(cluster, namespace, jobmanager_deployment("twice")).returncode == 0
    first = wait_pod(cluster, namespace, "twice")
    # Without pod-template-hash the ReplicaSet does not adopt the copy and delete one of the two.
    labels = {k: v for k, v in first["metadata"]["labels"].items() if k != "pod-template-hash"}
    again = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "twice-again",
            "labels": labels,
            "annotations": first["metadata"]["annotations"],
        },
        "spec": {"containers": first["spec"]["containers"], "volumes": first["spec"].get("volumes", [])},
    }
    result = cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(again), check=False)
    assert result.returncode == 0, result.stderr
    second = get(cluster, namespace, "pod", "twice-again")
    assert second is not None
    assert second["spec"]["containers"] == first["spec"]["containers"]
    assert second["metadata"]["annotations"] == first["metadata"]["annotations"]


def test_pod_of_a_missing_or_invalid_deployment_is_admitted_unchanged(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    result = apply(cluster, namespace, jobmanager_deployment("nobody"))
    assert result.returncode == 0
    pod = wait_pod(cluster, namespace, "nobody")
    main = container(pod, "flink-main-container")
    assert "flinkmem.io/jvm-flags" not in (pod["metadata"].get("annotations") or {})
    assert "memory" not in main["resources"].get("requests", {})
    wait_until(
        lambda: (
            "MemoryNotApplied"
            in cluster.kubectl("get", "events", "-n", namespace, "--field-selector", "reason=MemoryNotApplied").stdout
        ),
        what="a MemoryNotApplied event on the ReplicaSet",
    )


def test_kopfs_admission_engine_gives_the_same_answers(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """`--admission-engine kopf` serves the same two webhooks through kopf's engine (the default answers
    them directly): a refusal with its reason, a warning, and a pod sized alike."""
    with running_flinkmem(cluster.kubeconfig, tmp_path / "kopf-engine", ["--admission-engine", "kopf"]):
        refused = apply(cluster, namespace, EXAMPLES / "20-conflict-taskmanager-process-too-small.yaml")
        assert refused.returncode != 0 and "at least 982 MiB" in refused.stderr
        warned = apply(cluster, namespace, EXAMPLES / "04-valid-template-memory-replaced.yaml")
        assert warned.returncode == 0 and "memory limit 1Gi is not used" in warned.stderr
        assert apply(cluster, namespace, flinkdeployment("via-kopf", {}, memory="2g")).returncode == 0
        assert apply(cluster, namespace, jobmanager_deployment("via-kopf")).returncode == 0
        sized = wait_pod(cluster, namespace, "via-kopf")
        main = container(sized, "flink-main-container")
        assert sized["metadata"]["annotations"]["flinkmem.io/jvm-flags"] == (
            "-Xmx1530082096 -Xms1530082096 -XX:MaxMetaspaceSize=268435456"
        )
        assert main["resources"]["limits"]["memory"] in ("2Gi", "2048Mi")
