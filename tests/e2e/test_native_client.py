"""Flink's own native Kubernetes client deploys real clusters while flinkmem runs, for 1.20.3 and 2.3.0.

Every object here is built by real Flink (`kubernetes-session.sh`, `flink run(-application)` from
the cached flink-dist), not written by us: the JobManager Deployment, its pods and the
`flink-config-<cluster-id>` ConfigMap. Each test asserts what Flink built, then proves with Flink's
real start script, run against the pod's environment and Flink's ConfigMap, that the JobManager's
JVM gets Flink's own derivation and that its container fits it (`nativeflink.check_jobmanager_pod`).

Without a FlinkDeployment, flinkmem's source is Flink's ConfigMap plus the container's `-D`
options. The first JobManager pod is admitted before Flink writes that ConfigMap, so those tests
replace the pods (as a restart would) and check the replacements, which must be sized at admission.
With a FlinkDeployment of the same name, the very first pods are checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from flinkmem.conventions import RESOLVED_ANNOTATION
from localplane.controlplane import Cluster, wait_until
from localplane.serve import RunningOperator, running_flinkmem
from tests.e2e.nativeflink import (
    MAIN,
    NativeCluster,
    check_jobmanager_pod,
    container,
    expected_container_mib,
    flink_version_field,
    memory_mib,
    start_native,
)
from tests.support.flinkdist import FLINK_VERSIONS
from tests.support.localjobmanager import running_jobmanager
from tests.support.privileges import user_namespace_problem
from tests.support.startscript import derive_jobmanager, derive_taskmanager, run_container, write_config_dir

pytestmark = pytest.mark.e2e

# The client needs a TaskManager size to deploy anything.
TASKMANAGER: Final = {"taskmanager.memory.process.size": "1728m"}
LABELS: Final = ("app", "component", "type")


@pytest.fixture(scope="module")
def flinkmem(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    with running_flinkmem(cluster.kubeconfig, tmp_path_factory.mktemp("flinkmem")) as operator:
        yield operator


def _apply(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> Any:
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)


def _flinkdeployment(
    name: str, version: str, memory: str | None, config: dict[str, str], pod_template: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The FlinkDeployment a user would write for the same cluster (the operator is not running)."""
    jobmanager: dict[str, Any] = {"resource": {"cpu": 1}}
    if memory is not None:
        jobmanager["resource"]["memory"] = memory
    if pod_template is not None:
        jobmanager["podTemplate"] = pod_template
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name},
        "spec": {
            "flinkVersion": flink_version_field(version),
            "flinkConfiguration": config,
            "jobManager": jobmanager,
            "taskManager": {"resource": {"memory": "1728m", "cpu": 1}},
        },
    }


def _assert_flink_labels(native: NativeCluster, deployment: dict[str, Any]) -> None:
    expected = {"app": native.cluster_id, "component": "jobmanager", "type": "flink-native-kubernetes"}
    assert {k: deployment["metadata"]["labels"].get(k) for k in LABELS} == expected
    assert deployment["spec"]["selector"]["matchLabels"] == expected


def _assert_sized_by_flinkmem(pod: dict[str, Any]) -> None:
    """flinkmem resolved this pod's memory (its annotation), instead of leaving it as it came."""
    annotations = pod["metadata"].get("annotations") or {}
    assert RESOLVED_ANNOTATION in annotations, (
        f"flinkmem left pod {pod['metadata']['name']} unsized: no {RESOLVED_ANNOTATION} annotation "
        f"(annotations: {sorted(annotations)})"
    )


def _deployment_mib(deployment: dict[str, Any]) -> tuple[float, float]:
    resources = container(deployment["spec"]["template"]["spec"])["resources"]
    return memory_mib(resources["requests"]["memory"]), memory_mib(resources["limits"]["memory"])


@pytest.mark.parametrize("version", FLINK_VERSIONS)
def test_session_cluster_without_flinkdeployment(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, tmp_path: Path, version: str
) -> None:
    native = start_native(
        cluster, namespace, version, tmp_path, {**TASKMANAGER, "jobmanager.memory.process.size": "2g"}
    )
    try:
        deployment = native.deployment()
        _assert_flink_labels(native, deployment)
        main = container(deployment["spec"]["template"]["spec"])
        assert main["args"] == ["bash", "-c", "kubernetes-jobmanager.sh kubernetes-session "]
        assert _deployment_mib(deployment) == (2048, 2048)
        # The container rule the pod checks apply is the one Flink applied to its own Deployment.
        derived = derive_jobmanager(version, native.flink_config_dir())
        assert expected_container_mib(derived.total_process) == _deployment_mib(deployment)
        configmap = native.configmap()
        assert configmap["metadata"]["ownerReferences"][0]["name"] == native.cluster_id
        assert "config.yaml" in configmap["data"]
        for pod in native.replace_jobmanager_pods():
            check_jobmanager_pod(native, pod)
            _assert_sized_by_flinkmem(pod)
    finally:
        native.delete()


@pytest.mark.parametrize("version", FLINK_VERSIONS)
def test_application_cluster_with_flinkdeployment(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, tmp_path: Path, version: str
) -> None:
    name = f"app-{version.replace('.', '')}"
    config = {"jobmanager.memory.jvm-metaspace.size": "192m"}
    admitted = _apply(cluster, namespace, _flinkdeployment(name, version, "1600m", config))
    assert admitted.returncode == 0, admitted.stderr
    native = start_native(
        cluster,
        namespace,
        version,
        tmp_path,
        {**TASKMANAGER, **config, "jobmanager.memory.process.size": "1600m"},
        mode="application",
        cluster_id=name,
    )
    try:
        main = container(native.deployment()["spec"]["template"]["spec"])
        assert main["args"] == ["bash", "-c", "kubernetes-jobmanager.sh kubernetes-application "]
        assert _deployment_mib(native.deployment()) == (1600, 1600)
        # Sized at admission from the FlinkDeployment, before Flink's ConfigMap existed.
        for pod in native.wait_for_pods(1):
            check = check_jobmanager_pod(native, pod)
            assert check.command.entrypoint.endswith("KubernetesApplicationClusterEntrypoint")
            assert check.reference.jvm_flags["-XX:MaxMetaspaceSize="] == str(192 << 20)
            _assert_sized_by_flinkmem(pod)
    finally:
        native.delete()


@pytest.mark.parametrize("version", FLINK_VERSIONS)
def test_high_availability_with_two_jobmanagers(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, tmp_path: Path, version: str
) -> None:
    name = f"ha-{version.replace('.', '')}"
    ha = {"high-availability.type": "kubernetes", "high-availability.storageDir": "file:///flink-ha"}
    flinkdeployment = _flinkdeployment(name, version, "2g", ha)
    flinkdeployment["spec"]["jobManager"]["replicas"] = 2
    admitted = _apply(cluster, namespace, flinkdeployment)
    assert admitted.returncode == 0, admitted.stderr
    native = start_native(
        cluster,
        namespace,
        version,
        tmp_path,
        {**TASKMANAGER, **ha, "jobmanager.memory.process.size": "2g", "kubernetes.jobmanager.replicas": "2"},
        cluster_id=name,
    )
    try:
        deployment = native.deployment()
        assert deployment["spec"]["replicas"] == 2
        first, second = native.wait_for_pods(2)[:2]
        check_jobmanager_pod(native, first)
        # The standby was made from the same template and admitted the same way: same container, same env.
        for pod in (first, second):
            _assert_sized_by_flinkmem(pod)
        main, standby = container(first["spec"]), container(second["spec"])
        assert (standby["resources"], standby.get("env")) == (main["resources"], main.get("env"))
    finally:
        native.delete()


JM_TEMPLATE: Final = {
    "metadata": {"labels": {"team": "data"}, "annotations": {"example.com/owner": "data-team"}},
    "spec": {
        "initContainers": [
            {"name": "fetch-jars", "image": "busybox", "command": ["true"], "resources": {"limits": {"memory": "64Mi"}}}
        ],
        "containers": [
            {
                "name": MAIN,
                "resources": {"limits": {"memory": "1Gi", "ephemeral-storage": "2Gi"}},
                # Flink keeps the template's env; config.sh prefers this variable over env.java.opts.jobmanager.
                "env": [{"name": "FLINK_ENV_JAVA_OPTS_JM", "value": "-XX:+UseG1GC"}],
            },
            {"name": "log-shipper", "image": "busybox", "resources": {"limits": {"memory": "128Mi"}}},
        ],
    },
}


@pytest.mark.parametrize("version", FLINK_VERSIONS)
def test_pod_template_with_sidecar_init_container_and_memory_limit(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, tmp_path: Path, version: str
) -> None:
    """Flink overwrites the template's 1Gi limit with its own 2Gi, so the FlinkDeployment saying so is fine."""
    name = f"tpl-{version.replace('.', '')}"
    admitted = _apply(
        cluster,
        namespace,
        _flinkdeployment(name, version, "2g", {}, {"apiVersion": "v1", "kind": "Pod", **JM_TEMPLATE}),
    )
    assert admitted.returncode == 0, f"a FlinkDeployment that Flink runs correctly was refused: {admitted.stderr}"
    template_file = tmp_path / "jobmanager-template.yaml"
    template_file.write_text(json.dumps({"apiVersion": "v1", "kind": "Pod", **JM_TEMPLATE}))
    config = {
        **TASKMANAGER,
        "jobmanager.memory.process.size": "2g",
        "kubernetes.pod-template-file.jobmanager": str(template_file),
    }
    native = start_native(cluster, namespace, version, tmp_path, config, cluster_id=name)
    try:
        spec = native.deployment()["spec"]["template"]["spec"]
        # Flink's own result: its size over the template's, other resources kept, sidecars first.
        assert [c["name"] for c in spec["containers"]] == ["log-shipper", MAIN]
        assert _deployment_mib(native.deployment()) == (2048, 2048)
        assert container(spec)["resources"]["limits"]["ephemeral-storage"] == "2Gi"
        assert container(spec, "log-shipper")["resources"] == {"limits": {"memory": "128Mi"}}
        assert spec["initContainers"][0]["name"] == "fetch-jars"
        for pod in native.wait_for_pods(1):
            check = check_jobmanager_pod(native, pod)
            assert "-XX:+UseG1GC" in check.command.jvm_options
            _assert_sized_by_flinkmem(pod)
            assert pod["metadata"]["labels"]["team"] == "data"
            assert container(pod["spec"], "log-shipper")["resources"]["limits"] == {"memory": "128Mi"}
            assert pod["spec"]["initContainers"][0]["resources"]["limits"] == {"memory": "64Mi"}
            assert container(pod["spec"])["resources"]["limits"]["ephemeral-storage"] == "2Gi"
    finally:
        native.delete()


@pytest.mark.parametrize("version", FLINK_VERSIONS)
def test_memory_limit_factor_without_flinkdeployment(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, tmp_path: Path, version: str
) -> None:
    config = {**TASKMANAGER, "jobmanager.memory.process.size": "2g", "kubernetes.jobmanager.memory.limit-factor": "1.5"}
    native = start_native(cluster, namespace, version, tmp_path, config, cluster_id=f"lf-{version.replace('.', '')}")
    try:
        assert _deployment_mib(native.deployment()) == (2048, 3072)
        for pod in native.replace_jobmanager_pods():
            check_jobmanager_pod(native, pod, limit_factor=1.5)
            _assert_sized_by_flinkmem(pod)
    finally:
        native.delete()


@pytest.mark.parametrize("version", FLINK_VERSIONS)
def test_java_options_with_xmx_without_flinkdeployment(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, tmp_path: Path, version: str
) -> None:
    """`-Xmx4g` in `env.java.opts.jobmanager` would run a 4 GiB heap in Flink's 2048Mi container."""
    config = {
        **TASKMANAGER,
        "jobmanager.memory.process.size": "2g",
        "env.java.opts.jobmanager": "-XX:+UseG1GC -Xmx4g",
    }
    native = start_native(cluster, namespace, version, tmp_path, config, cluster_id=f"jo-{version.replace('.', '')}")
    try:
        assert _deployment_mib(native.deployment()) == (2048, 2048)
        assert "-Xmx4g" in native.configmap()["data"]["config.yaml"]
        for pod in native.replace_jobmanager_pods():
            check = check_jobmanager_pod(native, pod)
            assert "-XX:+UseG1GC" in check.command.jvm_options  # the user's other options survive
            _assert_sized_by_flinkmem(pod)
    finally:
        native.delete()


def test_entrypoint_args_override_the_configmap_without_flinkdeployment(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, tmp_path: Path
) -> None:
    """`-D` options on the JobManager's command line come on top of Flink's ConfigMap.

    Flink sizes its container from the config (2g) while its start script gets the command line's
    3g: real Flink is inconsistent here by itself, and the pod must follow what the JVM is given.
    """
    config = {
        **TASKMANAGER,
        "jobmanager.memory.process.size": "2g",
        "kubernetes.jobmanager.entrypoint.args": "-Djobmanager.memory.process.size=3g",
    }
    native = start_native(cluster, namespace, "2.3.0", tmp_path, config, cluster_id="entry-args")
    try:
        main = container(native.deployment()["spec"]["template"]["spec"])
        assert main["args"][2] == "kubernetes-jobmanager.sh kubernetes-session -Djobmanager.memory.process.size=3g"
        assert _deployment_mib(native.deployment()) == (2048, 2048)
        for pod in native.replace_jobmanager_pods():
            check = check_jobmanager_pod(native, pod)
            assert check.reference.total_process == 3 << 30
            _assert_sized_by_flinkmem(pod)
    finally:
        native.delete()


@pytest.mark.parametrize("with_flinkdeployment", [False, True], ids=["config-only", "flinkdeployment"])
def test_legacy_heap_on_flink_1_is_consistent(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, tmp_path: Path, with_flinkdeployment: bool
) -> None:
    """1.20.3 sizes the container from `jobmanager.heap.size` as total process, its script reads it as heap.

    Whichever of Flink's two readings flinkmem settles on, the container, the JVM flags and the
    `-D jobmanager.memory.*` options the JobManager receives must all come from that one reading.
    """
    version, name = "1.20.3", "legacy-heap"
    legacy = {"jobmanager.heap.size": "1g"}
    if with_flinkdeployment:  # a FlinkDeployment without `resource.memory`: the legacy key sizes it
        admitted = _apply(cluster, namespace, _flinkdeployment(name, version, None, legacy))
        assert admitted.returncode == 0, admitted.stderr
    native = start_native(
        cluster, namespace, version, tmp_path, {**TASKMANAGER, **legacy}, cluster_id=name, legacy_file=True
    )
    try:
        assert _deployment_mib(native.deployment()) == (1024, 1024)  # Flink's client: 1g of total process
        assert "flink-conf.yaml" in native.configmap()["data"]
        as_heap = derive_jobmanager(version, native.flink_config_dir())
        as_process_config = {**TASKMANAGER, "jobmanager.memory.process.size": "1g"}
        as_process_dir = write_config_dir(
            {"flink-conf.yaml": "".join(f"{k}: {v}\n" for k, v in as_process_config.items())},
            tmp_path / "as-process",
        )
        as_process = derive_jobmanager(version, as_process_dir)
        assert as_heap.size("heap.size") == 1 << 30 and as_process.total_process == 1 << 30
        pods = native.wait_for_pods(1) if with_flinkdeployment else native.replace_jobmanager_pods()
        for pod in pods:
            failures = []
            for reading in (as_heap, as_process):
                try:
                    check_jobmanager_pod(native, pod, reference=reading)
                except AssertionError as failure:
                    failures.append(str(failure))
                else:
                    break
            else:
                pytest.fail("neither of Flink's readings of jobmanager.heap.size fits the pod:\n" + "\n".join(failures))
            _assert_sized_by_flinkmem(pod)
    finally:
        native.delete()


def test_legacy_heap_alone_is_refused_by_flink_2(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """Flink 2 dropped `jobmanager.heap.size`: its client deploys nothing, so there is nothing to size."""
    native = start_native(
        cluster, namespace, "2.3.0", tmp_path, {**TASKMANAGER, "jobmanager.heap.size": "1g"}, check=False
    )
    assert not native.client.ok
    assert "need to be configured explicitly" in native.client.output
    absent = cluster.kubectl("get", "deployment", native.cluster_id, "-n", namespace, check=False)
    assert absent.returncode != 0


TM_TEMPLATE: Final = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"labels": {"pool": "batch"}},
    "spec": {
        "initContainers": [{"name": "tm-init", "image": "busybox", "command": ["true"]}],
        "containers": [
            {
                "name": MAIN,
                "resources": {"requests": {"memory": "512Mi"}, "limits": {"memory": "8Gi", "ephemeral-storage": "1Gi"}},
                "env": [{"name": "FROM_TM_TEMPLATE", "value": "yes"}],
            },
            {"name": "tm-sidecar", "image": "busybox"},
        ],
    },
}


def _serviceaccount_kubeconfig(cluster: Cluster, namespace: str) -> Path:
    """The identity a JobManager pod has: its namespace's `default` ServiceAccount with Flink's documented role."""
    cluster.kubectl(
        "create", "rolebinding", "flink", "--clusterrole=edit", f"--serviceaccount={namespace}:default", "-n", namespace
    )
    token = cluster.kubectl("create", "token", "default", "-n", namespace, "--duration=1h").stdout.strip()
    return cluster.with_token(token, f"flink-{namespace}").kubeconfig


@pytest.mark.parametrize("version", FLINK_VERSIONS)
def test_taskmanager_pods_made_by_a_real_jobmanager(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, tmp_path: Path, version: str
) -> None:
    """Flink's resource manager, in a real JobManager process, creates a TaskManager pod through the API server."""
    problem = user_namespace_problem("the local Flink JobManager of this test")
    if problem is not None:
        pytest.skip(problem)
    template_file = tmp_path / "taskmanager-template.yaml"
    template_file.write_text(json.dumps(TM_TEMPLATE))
    config = {
        **TASKMANAGER,
        "jobmanager.memory.process.size": "1600m",
        "slotmanager.number-of-slots.min": "1",  # makes the session cluster ask for one TaskManager at start
        "kubernetes.taskmanager.memory.limit-factor": "1.25",
        "env.java.opts.taskmanager": "-XX:+UseParallelGC",
        "kubernetes.pod-template-file.taskmanager": str(template_file),
    }
    native = start_native(cluster, namespace, version, tmp_path, config, cluster_id=f"tm-{version.replace('.', '')}")
    try:
        kubeconfig = _serviceaccount_kubeconfig(cluster, namespace)
        jobmanager_pod = native.wait_for_pods(1)[0]
        templates = native.pod_templates()
        assert list(templates) == ["taskmanager-pod-template.yaml"]
        with running_jobmanager(
            version,
            container(jobmanager_pod["spec"]),
            native.configmap()["data"],
            templates,
            kubeconfig,
            tmp_path / "jm",
        ) as jobmanager:

            def taskmanager() -> dict[str, Any] | None:
                assert jobmanager.alive(), f"the JobManager exited:\n{jobmanager.log()[-4000:]}"
                found = native.pods("taskmanager")
                return found[0] if found else None

            pod = wait_until(taskmanager, timeout=120, what="a TaskManager pod from the JobManager")
        assert pod["metadata"]["name"] == f"{native.cluster_id}-taskmanager-1-1"
        labels = pod["metadata"]["labels"]
        assert {k: labels.get(k) for k in LABELS} == {
            "app": native.cluster_id,
            "component": "taskmanager",
            "type": "flink-native-kubernetes",
        }
        assert labels["pool"] == "batch"
        owner = pod["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("Deployment", native.cluster_id)
        assert [c["name"] for c in pod["spec"]["containers"]] == ["tm-sidecar", MAIN]
        assert pod["spec"]["initContainers"][0]["name"] == "tm-init"

        reference = derive_taskmanager(version, native.flink_config_dir())
        main = container(pod["spec"])
        resources = main["resources"]
        observed = (memory_mib(resources["requests"]["memory"]), memory_mib(resources["limits"]["memory"]))
        assert observed == expected_container_mib(reference.total_process, 1.25)  # 1728Mi / 2160Mi
        assert resources["limits"]["ephemeral-storage"] == "1Gi"
        command = run_container(version, main, native.configmap()["data"], tmp_path / "tm-script")
        assert command.entrypoint.endswith("KubernetesTaskExecutorRunner")
        assert command.memory_flags() == reference.jvm_flags
        received = {k: v for k, v in command.dynamic_properties().items() if k.startswith("taskmanager.memory.")}
        assert received == reference.memory_dynamic()
        assert "-XX:+UseParallelGC" in command.jvm_options
    finally:
        native.delete()
