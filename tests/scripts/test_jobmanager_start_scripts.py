"""Proof that a mutated JobManager pod really starts its JVM with the derived memory flags.

Runs Flink's own start scripts (`kubernetes-jobmanager.sh`, `jobmanager.sh`) with the environment
flinkmem gives the JobManager container, and a stand-in `java` (see launch.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flinkmem.decisions.podplan import plan_pod
from flinkmem.decisions.validation import validate_deployment
from tests.scripts.launch import dynamic_configs, effective_flags, run_start_script
from tests.unit.fixtures import flinkdeployment, jobmanager_pod

pytestmark = pytest.mark.differential


@dataclass(frozen=True)
class Started:
    memory: Any
    container: Any
    occurrences: list[dict[str, str]]
    args: list[str]


def _run(
    tmp_path: Path, version: str, deployment: dict[str, Any], command: list[str]
) -> tuple[dict[str, str], Started]:
    validation = validate_deployment(deployment)
    result = validation.jobmanager
    # Conflicts outside the engine (a stray -Xmx) still resolve; the pod patch overrides them.
    assert validation.source is not None and result is not None and result.memory is not None, validation.reason
    pod = jobmanager_pod()
    plan = plan_pod(pod, len(pod["spec"]["containers"]) - 1, result, validation.source)
    assert plan is not None
    env = {e["name"]: e["value"] for e in plan.env}
    args = run_start_script(tmp_path, version, validation.source.config, env, command)
    last, occurrences = effective_flags(args)
    return last, Started(result.memory, result.container, occurrences, args)


def _expected(memory: Any) -> dict[str, str]:
    flags = {"-Xmx": str(memory.jvm_heap), "-Xms": str(memory.jvm_heap), "-XX:MaxMetaspaceSize=": str(memory.metaspace)}
    if memory.jvm_direct_memory is not None:
        flags["-XX:MaxDirectMemorySize="] = str(memory.jvm_direct_memory)
    return flags


def test_native_kubernetes_jobmanager_on_flink_2(tmp_path: Path) -> None:
    deployment = flinkdeployment({"env.java.opts.jobmanager": "-XX:+UseG1GC -Xmx4g"}, memory="2g", version="v2_3")
    last, started = _run(tmp_path, "2.3.0", deployment, ["kubernetes-jobmanager.sh", "kubernetes-session"])
    assert last == _expected(started.memory)
    # Real Flink's BashJavaUtils, run by the script on the same configuration, computed the same heap.
    assert started.occurrences[0] == {"-Xmx": str(started.memory.jvm_heap)}
    assert "-XX:+UseG1GC" in started.args
    assert "-Xmx4g" not in started.args


def test_standalone_jobmanager_with_direct_memory_limit_on_flink_2(tmp_path: Path) -> None:
    deployment = flinkdeployment(
        {"jobmanager.memory.heap.size": "1g", "jobmanager.memory.enable-jvm-direct-memory-limit": "true"},
        memory=None,
        version="v2_3",
        mode="standalone",
    )
    last, started = _run(tmp_path, "2.3.0", deployment, ["jobmanager.sh", "start-foreground"])
    assert last == _expected(started.memory)
    assert last["-XX:MaxDirectMemorySize="] == "134217728"
    assert started.occurrences[0] == {"-Xmx": "1073741824"}


def test_legacy_heap_on_flink_1_native_is_consistent_in_the_pod(tmp_path: Path) -> None:
    """Flink 1.x's client sizes a native pod from jobmanager.heap.size read as total process memory (1 GiB),
    while the start script inside the pod reads it as the JVM heap. flinkmem sizes the container to what
    the script derives instead of shrinking the JVM: flags, `-D` options and container agree."""
    deployment = flinkdeployment({"jobmanager.heap.size": "1g"}, memory=None, version="v1_20")
    last, started = _run(tmp_path, "1.20.3", deployment, ["kubernetes-jobmanager.sh", "kubernetes-session"])
    assert last == _expected(started.memory)
    # The JVM keeps the heap real Flink's BashJavaUtils gave it, and Flink's own view agrees with the JVM.
    assert started.occurrences[0] == {"-Xmx": "1073741824"}
    assert last["-Xmx"] == "1073741824"
    dynamic = dynamic_configs(started.args)
    assert dynamic["jobmanager.memory.heap.size"] == "1073741824b"
    in_script = sum(
        int(dynamic[f"jobmanager.memory.{key}"].removesuffix("b"))
        for key in ("heap.size", "off-heap.size", "jvm-metaspace.size", "jvm-overhead.max")
    )
    # The container holds the whole process the script budgets, which Flink's client would have cut to 1 GiB.
    assert started.container.request_bytes >= in_script > 1024**3
    assert started.container.flink_request_mib == 1024


def test_standalone_jobmanager_on_flink_1(tmp_path: Path) -> None:
    deployment = flinkdeployment(
        {"env.java.opts.jobmanager": "-verbose:gc"}, memory="1600m", version="v1_20", mode="standalone"
    )
    last, started = _run(tmp_path, "1.20.3", deployment, ["jobmanager.sh", "start-foreground"])
    assert last == _expected(started.memory)
    assert started.occurrences[0] == {"-Xmx": "1073741824"}
    assert "-verbose:gc" in started.args
