"""Which source configures a Flink pod: its FlinkDeployment first, else Flink's own ConfigMap with the
container's -D options on top, else none (and why)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from flinkmem.decisions.validation import validate_role
from flinkmem.engine import DeploymentMode, FlinkVersion
from flinkmem.sources.cache import SourceCache
from flinkmem.sources.model import dynamic_properties
from flinkmem.sources.pods import (
    OpenedPod,
    PodShapeError,
    cluster_id,
    main_container,
    open_pod,
    pod_mode,
    pod_role,
)
from flinkmem.sources.roles import JOBMANAGER, TASKMANAGER
from tests.unit.fixtures import flinkdeployment, jobmanager_pod

CONTAINER = "flink-main-container"


class Lookup:
    def __init__(
        self, deployments: Mapping[str, Any] | None = None, configmaps: Mapping[str, Any] | None = None
    ) -> None:
        self.deployments = dict(deployments or {})
        self.configmaps = dict(configmaps or {})
        self.asked: list[str] = []

    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        self.asked.append(f"fd {namespace}/{name}")
        return self.deployments.get(name)

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        self.asked.append(f"cm {namespace}/{name}")
        return self.configmaps.get(name)


def locate(pod: dict[str, Any], lookup: Lookup) -> OpenedPod:
    """The pod opened over a source cache with nothing watched yet: every object is read from `lookup`."""
    cache = SourceCache(lookup)
    opened = asyncio.run(open_pod(pod, cache, container_name=CONTAINER, resource_plural="flinkdeployments"))
    assert opened is not None
    return opened


def flink_configmap(text: str) -> dict[str, Any]:
    return {"metadata": {"name": "flink-config-demo", "namespace": "jobs"}, "data": {"config.yaml": text}}


def test_the_flinkdeployment_decides_and_the_configmap_is_not_read() -> None:
    lookup = Lookup({"demo": flinkdeployment(memory="2g")}, {"flink-config-demo": flink_configmap("a: b\n")})
    found = locate(jobmanager_pod(), lookup)
    assert found.source is not None and found.source.kind == "FlinkDeployment"
    assert found.deployment is not None and found.deployment["metadata"] == {"name": "demo", "namespace": "jobs"}
    assert lookup.asked == ["fd jobs/demo"]


def test_without_a_flinkdeployment_flinks_configmap_decides() -> None:
    lookup = Lookup(configmaps={"flink-config-demo": flink_configmap("jobmanager.memory.process.size: 2g\n")})
    pod = jobmanager_pod()
    pod["spec"]["containers"][-1]["image"] = "flink:1.20.3-java17"
    found = locate(pod, lookup)
    assert found.source is not None and found.source.kind == "ConfigMap"
    assert found.source.version == FlinkVersion(1, 20) and found.source.mode is DeploymentMode.NATIVE
    assert lookup.asked == ["fd jobs/demo", "cm jobs/flink-config-demo"]
    memory = validate_role(found.source, JOBMANAGER).memory
    assert memory is not None and memory.jvm_heap == 1530082096  # Flink's heap for 2g (spec vector C02)


def test_container_dynamic_properties_override_the_file() -> None:
    lookup = Lookup(configmaps={"flink-config-demo": flink_configmap("jobmanager.memory.process.size: 2g\n")})
    pod = jobmanager_pod()
    pod["spec"]["containers"][-1]["args"] = [
        "bash",
        "-c",
        "kubernetes-jobmanager.sh kubernetes-session -D jobmanager.memory.process.size=1600m -Dx=1",
    ]
    found = locate(pod, lookup)
    assert found.source is not None
    assert found.source.config["jobmanager.memory.process.size"] == "1600m"
    assert found.source.config["x"] == "1"


def test_no_source_says_what_was_looked_for() -> None:
    found = locate(jobmanager_pod(), Lookup())
    assert found.source is None and found.role is JOBMANAGER
    assert found.reason is not None
    assert "'demo'" in found.reason and "'flink-config-demo'" in found.reason
    pod = jobmanager_pod()
    del pod["metadata"]["labels"]["app"]
    assert "no app label" in (locate(pod, Lookup()).reason or "")


def test_an_invalid_flinkdeployment_is_a_problem_not_a_fallback() -> None:
    broken = flinkdeployment(version="banana")
    found = locate(jobmanager_pod(), Lookup({"demo": broken}, {"flink-config-demo": flink_configmap("a: b\n")}))
    assert found.source is None and found.reason is not None and "spec.flinkVersion" in found.reason
    assert found.deployment is not None  # Events about the pod still go to its FlinkDeployment
    assert found.deployment["kind"] == "FlinkDeployment" and found.deployment["metadata"]["name"] == "demo"


def test_an_unreadable_configmap_is_a_problem() -> None:
    found = locate(jobmanager_pod(), Lookup(configmaps={"flink-config-demo": {"metadata": {"name": "x"}}}))
    assert found.source is None and "has no data" in (found.reason or "")


def test_mode_follows_flinks_type_label() -> None:
    assert pod_mode({"type": "flink-standalone-kubernetes"}) is DeploymentMode.STANDALONE
    assert pod_mode({"type": "flink-native-kubernetes"}) is DeploymentMode.NATIVE
    assert pod_mode({}) is DeploymentMode.NATIVE


def test_dynamic_properties_as_the_start_scripts_take_them() -> None:
    container = {
        "command": ["/docker-entrypoint.sh"],
        "args": ["bash", "-c", "script.sh -D a=1 -Db=2 -D 'c=x y' -D broken -Dd=3 -D a=4"],
    }
    assert dynamic_properties(container) == {"a": "4", "b": "2", "c": "x y", "d": "3"}
    assert dynamic_properties({"args": "not a list"}) == {}
    assert dynamic_properties({"args": ["unbalanced 'quote -D e=5"]}) == {"e": "5"}


# A TaskManager pod as real Flink 2.3.0's resource manager built it (issue 13's native-client run):
# its args carry the JobManager's own -D options first, then the TaskManager's pinned memory.
REAL_TM_ARGS = (
    "kubernetes-taskmanager.sh -Djobmanager.memory.jvm-overhead.min='201326592b' "
    "-Dtaskmanager.resource-id='demo-taskmanager-1-1' -Djobmanager.memory.off-heap.size='134217728b' "
    "-Djobmanager.memory.heap.size='1073741824b' "
    "-D taskmanager.memory.network.min=134217730b -D taskmanager.cpu.cores=1.0 "
    "-D taskmanager.memory.task.off-heap.size=0b -D taskmanager.memory.jvm-metaspace.size=268435456b "
    "-D external-resources=none -D taskmanager.memory.jvm-overhead.min=201326592b "
    "-D taskmanager.memory.framework.off-heap.size=134217728b -D taskmanager.memory.network.max=134217730b "
    "-D taskmanager.memory.framework.heap.size=134217728b -D taskmanager.memory.managed.size=536870920b "
    "-D taskmanager.memory.task.heap.size=402653174b -D taskmanager.numberOfTaskSlots=1 "
    "-D taskmanager.memory.jvm-overhead.max=201326592b"
)
REAL_TM_JVM_MEM_OPTS = "-Xmx536870902 -Xms536870902 -XX:MaxDirectMemorySize=268435458 -XX:MaxMetaspaceSize=268435456"


def test_a_native_taskmanagers_pinned_options_give_exactly_its_jvm_flags() -> None:
    # The file says 1728m of process plus a Flink size; the resource manager dropped both totals and
    # pinned every component, which is what the pod runs with.
    text = "taskmanager.memory.process.size: 1728m\njobmanager.memory.process.size: 1600m\n"
    lookup = Lookup(configmaps={"flink-config-demo": flink_configmap(text)})
    pod = jobmanager_pod()
    pod["metadata"]["labels"]["component"] = "taskmanager"
    main = pod["spec"]["containers"][-1]
    main["image"] = "flink:2.3.0"
    main["args"] = ["bash", "-c", REAL_TM_ARGS]
    found = locate(pod, lookup)
    assert found.role is TASKMANAGER and found.source is not None
    assert "taskmanager.memory.process.size" not in found.source.config
    memory = validate_role(found.source, TASKMANAGER).memory
    assert memory is not None
    assert memory.jvm_args == REAL_TM_JVM_MEM_OPTS
    # ... and the same -D options, in Flink's order, as the resource manager put on the command line.
    assert memory.dynamic_configs == REAL_TM_ARGS[REAL_TM_ARGS.index("-D taskmanager.memory.network.min") :]


def test_selects_flink_jobmanager_pods_and_opt_in() -> None:
    assert pod_role({"component": "jobmanager", "type": "flink-native-kubernetes"}) is JOBMANAGER
    assert pod_role({"component": "jobmanager", "type": "flink-standalone-kubernetes"}) is JOBMANAGER
    assert pod_role({"component": "jobmanager"}) is None
    assert pod_role({"component": "jobmanager", "type": "other"}) is None
    assert pod_role({"component": "jobmanager", "flinkmem.io/opt-in": "true"}) is JOBMANAGER
    assert pod_role({"component": "jobmanager", "flinkmem.io/opt-in": "yes"}) is None
    assert pod_role({"flinkmem.io/opt-in": "true"}) is None  # the component says which role
    assert cluster_id({"app": "demo"}) == "demo"
    assert cluster_id({}) is None


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ([], "spec"),
        ({"containers": {}}, "spec.containers"),
        ({"containers": [None]}, "spec.containers[0]"),
        ({"containers": [{"name": CONTAINER, "resources": []}]}, "spec.containers[0].resources"),
        ({"containers": [{"name": CONTAINER, "resources": {"limits": "1Gi"}}]}, "spec.containers[0].resources.limits"),
        ({"containers": [{"name": CONTAINER, "env": {"A": "b"}}]}, "spec.containers[0].env"),
        ({"containers": [{"name": CONTAINER, "env": [{"value": "x"}]}]}, "spec.containers[0].env[0]"),
        ({"containers": [{"name": CONTAINER, "args": "bash"}]}, "spec.containers[0].args"),
    ],
)
def test_mistyped_pods_name_the_field(spec: Any, field: str) -> None:
    with pytest.raises(PodShapeError) as info:
        main_container({"spec": spec}, CONTAINER)
    assert info.value.field == field


def test_pods_without_spec_or_main_container_have_none() -> None:
    assert main_container({}, CONTAINER) is None
    assert main_container({"spec": {"containers": None}}, CONTAINER) is None
    assert main_container({"spec": {"containers": [{"name": "other", "resources": []}]}}, CONTAINER) is None


def test_taskmanager_pods_are_selected_by_flinks_labels_and_opt_in() -> None:
    assert pod_role({"component": "taskmanager", "type": "flink-native-kubernetes"}) is TASKMANAGER
    assert pod_role({"component": "taskmanager", "type": "flink-standalone-kubernetes"}) is TASKMANAGER
    assert pod_role({"component": "taskmanager", "flinkmem.io/opt-in": "true"}) is TASKMANAGER
    assert pod_role({"component": "taskmanager"}) is None


def test_only_flink_pods_are_opened_and_a_malformed_one_says_why() -> None:
    other = jobmanager_pod()
    other["metadata"]["labels"] = {"app": "demo"}
    assert asyncio.run(open_pod(other, SourceCache(Lookup()), container_name=CONTAINER, resource_plural="x")) is None
    mistyped = jobmanager_pod()
    mistyped["spec"]["containers"] = {"name": CONTAINER}
    found = locate(mistyped, Lookup({"demo": flinkdeployment(memory="2g")}))
    assert found.source is None and found.reason == "spec.containers must be a list"
    without = jobmanager_pod()
    without["spec"]["containers"] = [{"name": "sidecar"}]
    found = locate(without, Lookup({"demo": flinkdeployment(memory="2g")}))
    assert found.source is None and found.reason == f"the pod has no container named {CONTAINER}"


# Linux's MAX_ARG_STRLEN: 32 pages of 4 KiB, the string's NUL included (fs/exec.c, copy_strings).
EXEC_LIMIT = 131_072


@pytest.mark.parametrize(
    ("container", "field", "size"),
    [
        # "FLINK_ENV_JAVA_OPTS_JM=" is 23 bytes; with the NUL, 24 + the value.
        ({"env": [{"name": "FLINK_ENV_JAVA_OPTS_JM", "value": "x" * (EXEC_LIMIT - 23)}]}, "env[0]", EXEC_LIMIT + 1),
        ({"env": [{"name": "A", "value": "é" * (EXEC_LIMIT // 2)}]}, "env[0]", EXEC_LIMIT + 3),  # UTF-8 bytes
        ({"args": ["bash", "-c", "-Dx=" + "y" * EXEC_LIMIT]}, "args[2]", EXEC_LIMIT + 5),
        ({"command": ["z" * EXEC_LIMIT]}, "command[0]", EXEC_LIMIT + 1),
    ],
)
def test_a_string_linux_cannot_exec_leaves_the_pod_unsized_naming_it(
    container: dict[str, Any], field: str, size: int
) -> None:
    pod = jobmanager_pod(extra_containers=0)
    pod["spec"]["containers"][0].update(container)
    found = locate(pod, Lookup({"demo": flinkdeployment(memory="2g")}))
    assert found.source is None and found.reason is not None
    assert found.reason.startswith(f"spec.containers[0].{field}")
    assert f"is {size:,} bytes" in found.reason and "MAX_ARG_STRLEN" in found.reason


def test_strings_linux_can_exec_are_read() -> None:
    pod = jobmanager_pod(extra_containers=0)
    pod["spec"]["containers"][0]["env"] = [{"name": "FLINK_ENV_JAVA_OPTS_JM", "value": "x" * (EXEC_LIMIT - 24)}]
    pod["spec"]["containers"][0]["args"] = ["y" * (EXEC_LIMIT - 1)]
    found = locate(pod, Lookup({"demo": flinkdeployment(memory="2g")}))
    assert found.source is not None and found.reason is None
