"""Proof that a sized TaskManager pod really starts its JVM with the derived memory flags.

Runs Flink's own `kubernetes-taskmanager.sh` (native: the JVM flags come from FLINK_TM_JVM_MEM_OPTS,
which the JobManager's resource manager sets, and its memory arrives as `-D` options) and
`taskmanager.sh` (standalone: BashJavaUtils GET_TM_RESOURCE_PARAMS derives them in the pod), of
Flink 1.20.3 and 2.3.0, with the environment flinkmem gives the TaskManager container and a stand-in
`java` (see launch.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flinkmem.decisions.podplan import plan_pod
from flinkmem.decisions.validation import validate_deployment
from flinkmem.engine import TaskManagerMemory
from flinkmem.sources.roles import TASKMANAGER
from tests.scripts.launch import dynamic_configs, effective_flags, run_start_script
from tests.unit.fixtures import flinkdeployment, jobmanager_pod

pytestmark = pytest.mark.differential

VERSIONS = [("1.20.3", "v1_20"), ("2.3.0", "v2_3")]


def _taskmanager_pod() -> dict[str, Any]:
    pod = jobmanager_pod()
    pod["metadata"]["labels"]["component"] = "taskmanager"
    return pod


def _sized(deployment: dict[str, Any]) -> tuple[TaskManagerMemory, dict[str, str], dict[str, object]]:
    validation = validate_deployment(deployment)
    result = validation.role(TASKMANAGER)
    assert validation.source is not None and result is not None and result.memory is not None, validation.reason
    assert isinstance(result.memory, TaskManagerMemory)
    pod = _taskmanager_pod()
    plan = plan_pod(pod, len(pod["spec"]["containers"]) - 1, result, validation.source)
    assert plan is not None
    env = {e["name"]: e["value"] for e in plan.env}
    return result.memory, env, dict(validation.source.config)


def _expected(memory: TaskManagerMemory) -> dict[str, str]:
    return {
        "-Xmx": str(memory.jvm_heap),
        "-Xms": str(memory.jvm_heap),
        "-XX:MaxDirectMemorySize=": str(memory.jvm_direct_memory),
        "-XX:MaxMetaspaceSize=": str(memory.metaspace),
    }


@pytest.mark.parametrize(("dist", "version"), VERSIONS)
def test_native_taskmanager_keeps_the_derived_flags_over_a_stray_xmx(tmp_path: Path, dist: str, version: str) -> None:
    deployment = flinkdeployment(
        {"env.java.opts.taskmanager": "-XX:+UseParallelGC -Xmx8g"}, tm_memory="4g", version=version
    )
    memory, env, config = _sized(deployment)
    # What the JobManager's resource manager puts on a native TaskManager pod: the flags and the -D options.
    env["FLINK_TM_JVM_MEM_OPTS"] = memory.jvm_args
    args = run_start_script(
        tmp_path, dist, config, env, ["kubernetes-taskmanager.sh", *memory.dynamic_configs.split(" ")]
    )
    last, occurrences = effective_flags(args)
    assert last == _expected(memory)
    assert occurrences[0] == {"-Xmx": str(memory.jvm_heap)}  # FLINK_TM_JVM_MEM_OPTS, first
    assert "-XX:+UseParallelGC" in args and "-Xmx8g" not in args
    assert dynamic_configs(args)["taskmanager.memory.task.heap.size"] == f"{memory.task_heap}b"


@pytest.mark.parametrize(("dist", "version"), VERSIONS)
def test_standalone_taskmanager_gets_flinks_own_derivation(tmp_path: Path, dist: str, version: str) -> None:
    deployment = flinkdeployment(
        {"taskmanager.memory.managed.fraction": "0.25", "taskmanager.memory.network.max": "128m"},
        tm_memory="3g",
        version=version,
        mode="standalone",
    )
    memory, env, config = _sized(deployment)
    args = run_start_script(tmp_path, dist, config, env, ["taskmanager.sh", "start-foreground"])
    last, occurrences = effective_flags(args)
    assert last == _expected(memory)
    # Real Flink's BashJavaUtils in the script computed the very same flags before ours were appended.
    assert occurrences[:4] == [{k: v} for k, v in _expected(memory).items()]
    # ... and the same -D options for the TaskManager process.
    ours = dict(pair.split("=", 1) for pair in memory.dynamic_configs.split(" ")[1::2])
    script = dynamic_configs(args)
    assert {key: script.get(key) for key in ours} == ours


def test_legacy_heap_on_flink_1_standalone_is_consistent_in_the_pod(tmp_path: Path) -> None:
    """1.x's taskmanager.sh reads taskmanager.heap.size as Total Flink Memory; flinkmem sizes the
    container to that process (Flink's cluster specification would read it as the process size)."""
    deployment = flinkdeployment({"taskmanager.heap.size": "1g"}, tm_memory=None, version="v1_20", mode="standalone")
    memory, env, config = _sized(deployment)
    assert memory.total_flink == 1 << 30
    args = run_start_script(tmp_path, "1.20.3", config, env, ["taskmanager.sh", "start-foreground"])
    last, occurrences = effective_flags(args)
    assert last == _expected(memory)
    assert occurrences[0] == {"-Xmx": str(memory.jvm_heap)}
