"""Everything flinkmem checks about one FlinkDeployment: Flink's own refusal, `-Xmx` options that
silently override the derived heap (refused: the JVM would run outside its budget), and pod-template
memory that Flink replaces with its own size (a warning saying what the pod gets)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from flinkmem.conventions import DEFAULT_CONTAINER
from flinkmem.decisions.validation import (
    WARNING_LIMIT,
    RoleValidation,
    Validation,
    validate_deployment,
    validate_role,
    warning_lines,
)
from flinkmem.engine import DeploymentMode, FlinkVersion
from flinkmem.sources.model import FlinkSource
from flinkmem.sources.roles import TASKMANAGER

MIB = 1 << 20
GIB = 1 << 30
P = "jobmanager.memory.process.size"
HEAP_1600M = 1073741824


def deployment(
    conf: dict[str, Any] | None = None,
    memory: str | None = None,
    limit: str | None = None,
    env: dict[str, str] | None = None,
    version: str = "v2_1",
    name: str = "demo",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "flinkVersion": version,
        "flinkConfiguration": conf or {P: "1600m"},
        "taskManager": {"resource": {"memory": "1728m"}},
    }
    if memory is not None:
        spec["jobManager"] = {"resource": {"memory": memory}}
    container: dict[str, Any] = {"name": DEFAULT_CONTAINER}
    if limit is not None:
        container["resources"] = {"limits": {"memory": limit}}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if len(container) > 1:
        spec["podTemplate"] = {"spec": {"containers": [container]}}
    return {"kind": "FlinkDeployment", "metadata": {"name": name}, "spec": spec}


def conflict_codes(result: Validation) -> list[str]:
    return [c.code for c in result.conflicts]


def jm(result: Validation) -> RoleValidation:
    found = result.jobmanager
    assert found is not None
    return found


def test_valid_deployment() -> None:
    result = validate_deployment(deployment())
    assert result.valid
    assert result.conflicts == ()
    assert result.reason == ""
    memory, container = jm(result).memory, jm(result).container
    assert memory is not None and memory.jvm_heap == HEAP_1600M
    assert container is not None and container.request == "1600Mi"
    data = result.to_dict()
    assert data["valid"] is True
    assert data["jobmanager"]["memory"]["jvmHeap"] == HEAP_1600M
    assert data["jobmanager"]["container"]["request"] == "1600Mi"
    assert data["conflicts"] == []


def test_flink_refusal_is_a_conflict_with_its_rule_and_options() -> None:
    result = validate_deployment(deployment(conf={P: "100m"}))
    assert not result.valid
    assert conflict_codes(result) == ["metaspace-and-overhead-exceed-process"]
    assert P in result.conflicts[0].fields
    assert jm(result).memory is None and jm(result).container is None
    assert result.reason == result.conflicts[0].message
    assert result.reason.startswith("JobManager: ")


def test_malformed_spec_is_a_conflict_naming_the_field() -> None:
    body = deployment()
    body["spec"]["flinkVersion"] = "banana"
    result = validate_deployment(body)
    assert conflict_codes(result) == ["invalid-spec"]
    assert result.conflicts[0].fields == ("spec.flinkVersion",)
    assert result.source is None and result.roles == ()


def test_limit_factor_below_one_is_a_conflict() -> None:
    result = validate_deployment(deployment(conf={P: "1600m", "kubernetes.jobmanager.memory.limit-factor": "0.5"}))
    assert conflict_codes(result) == ["limit-factor-below-one"]


# ---------------------------------------------------------------------------------------------
# pod template memory: Flink replaces it (see tests/e2e/test_native_client.py for real Flink doing so)


@pytest.mark.parametrize(
    ("limit", "replaced"),
    [
        ("1500Mi", True),
        ("1600Mi", False),  # exactly what the pod gets
        ("2Gi", True),  # larger, yet Flink writes 1600Mi over it all the same
        ("1677721600", False),
        ("1600m", True),  # Kubernetes milli: 1.6 bytes
        ("1.6G", True),
    ],
)
def test_template_limit_is_replaced_with_a_warning_not_refused(limit: str, replaced: bool) -> None:
    result = validate_deployment(deployment(limit=limit))
    assert result.valid
    codes = [w.code for w in jm(result).warnings]
    assert ("template-memory-replaced" in codes) is replaced


def test_template_limit_warning_says_what_the_pod_gets() -> None:
    result = validate_deployment(deployment(conf={"jobmanager.memory.flink.size": "2000m"}, limit="1Gi"))
    assert result.valid
    [warning] = [w for w in jm(result).warnings if w.code == "template-memory-replaced"]
    assert warning.message.startswith("JobManager: ")
    assert "1Gi" in warning.message
    assert "2506Mi" in warning.message  # Flink's own size: the 2628430511-byte process, floored to MiB
    assert "2507Mi/2507Mi" in warning.message  # flinkmem's: rounded up, so the JVM always fits
    assert warning.fields == ("resources.limits.memory",)


def test_template_request_is_replaced_too() -> None:
    body = deployment()
    body["spec"]["podTemplate"] = {
        "spec": {"containers": [{"name": DEFAULT_CONTAINER, "resources": {"requests": {"memory": "1Gi"}}}]}
    }
    result = validate_deployment(body)
    assert result.valid
    # The shared template reaches both roles; Flink replaces the request of each.
    assert [(w.message.split(":")[0], w.fields) for w in result.warnings if w.code == "template-memory-replaced"] == [
        ("JobManager", ("resources.requests.memory",)),
        ("TaskManager", ("resources.requests.memory",)),
    ]


# ---------------------------------------------------------------------------------------------
# -Xmx and friends in the Java options


@pytest.mark.parametrize(
    "conf_opts",
    [
        {"env.java.opts.jobmanager": "-Xmx2g"},
        {"env.java.opts.jobmanager": "-XX:+UseG1GC -Xmx512m"},
        {"env.java.opts.all": "-XX:MaxHeapSize=4g"},
        {"env.java.default-opts.jobmanager": "-Xmx1073741825"},
    ],
)
def test_heap_flag_contradicting_the_derived_heap_is_a_conflict(conf_opts: dict[str, str]) -> None:
    result = validate_deployment(deployment(conf={P: "1600m", **conf_opts}))
    assert [c.code for c in jm(result).conflicts] == ["java-opts-heap-conflict"]
    assert jm(result).conflicts[0].fields == (next(iter(conf_opts)),)


def test_options_for_every_process_reach_the_taskmanager_too() -> None:
    result = validate_deployment(deployment(conf={P: "1600m", "env.java.opts.all": "-Xmx4g"}))
    assert [c.message.split(":")[0] for c in result.conflicts] == ["JobManager", "TaskManager"]
    tm_only = validate_deployment(deployment(conf={P: "1600m", "env.java.opts.taskmanager": "-Xmx4g"}))
    assert [c.message.split(":")[0] for c in tm_only.conflicts] == ["TaskManager"]
    assert "taskmanager.memory.* options" in tm_only.conflicts[0].message


@pytest.mark.parametrize("opts", ["-Xmx1g", "-Xmx1073741824 -Xms1073741824", "-Xmx1024m -Xms1G", "-XX:+UseG1GC"])
def test_heap_flag_equal_to_the_derived_heap_is_fine(opts: str) -> None:
    result = validate_deployment(deployment(conf={P: "1600m", "env.java.opts.jobmanager": opts}))
    assert result.valid
    assert result.warnings == ()


@pytest.mark.parametrize(
    "conf_opts",
    [
        # HotSpot keeps the last -Xmx: the job manager options come after the all-process ones ...
        {"env.java.opts.all": "-Xmx2g", "env.java.opts.jobmanager": "-Xmx1g"},
        # ... and within one option string the later flag wins too.
        {"env.java.opts.jobmanager": "-Xmx2g -Xmx1073741824"},
    ],
)
def test_overridden_heap_flag_is_not_a_conflict(conf_opts: dict[str, str]) -> None:
    # The JobManager's JVM ends up with the derived 1 GiB heap, so nothing contradicts Flink's sizing.
    result = validate_deployment(deployment(conf={P: "1600m", **conf_opts}))
    assert jm(result).conflicts == ()


def test_heap_flag_in_jvm_args_is_overridden_by_flink() -> None:
    # JVM_ARGS comes before Flink's computed flags, so its -Xmx never takes effect.
    result = validate_deployment(deployment(env={"JVM_ARGS": "-Xmx8g"}))
    assert result.valid


def test_heap_flag_from_the_template_environment_is_a_conflict() -> None:
    result = validate_deployment(deployment(env={"FLINK_ENV_JAVA_OPTS_JM": "-Xmx3g"}))
    assert conflict_codes(result) == ["java-opts-heap-conflict"]
    assert result.conflicts[0].fields == ("env FLINK_ENV_JAVA_OPTS_JM",)


def test_environment_replaces_configured_jobmanager_options() -> None:
    # FLINK_ENV_JAVA_OPTS_JM is set, so env.java.opts.jobmanager never reaches the JVM.
    result = validate_deployment(
        deployment(conf={P: "1600m", "env.java.opts.jobmanager": "-Xmx8g"}, env={"FLINK_ENV_JAVA_OPTS_JM": "-Xss1m"})
    )
    assert result.valid


def test_other_memory_flags_are_warnings() -> None:
    result = validate_deployment(
        deployment(
            conf={P: "1600m", "env.java.opts.jobmanager": "-XX:MaxMetaspaceSize=512m -XX:MaxDirectMemorySize=1g"}
        )
    )
    assert result.valid
    assert [w.code for w in result.warnings] == ["java-opts-memory-flag", "java-opts-memory-flag"]
    matching = validate_deployment(
        deployment(conf={P: "1600m", "env.java.opts.jobmanager": "-XX:MaxMetaspaceSize=256m"})
    )
    assert matching.warnings == ()


def test_all_conflicts_are_reported_together() -> None:
    conf = {P: "1600m", "env.java.opts.jobmanager": "-Xmx2g", "env.java.opts.all": "-XX:InitialHeapSize=2g"}
    result = validate_deployment(deployment(conf=conf, limit="1Gi"))
    # Two for the JobManager (both flags win in their kind), one for the TaskManager (the -Xms of all).
    assert conflict_codes(result) == ["java-opts-heap-conflict"] * 3
    assert result.reason == "; ".join(c.message for c in result.conflicts)


def test_notices_become_warnings() -> None:
    result = validate_deployment(deployment(conf={P: "1600m"}, memory="2g"))
    assert result.valid
    assert "process-size-overridden" in [w.code for w in result.warnings]
    result = validate_deployment(deployment(conf={"jobmanager.memory.heap.size": "50m"}))
    assert "heap-below-minimum" in [w.code for w in result.warnings]


# ---------------------------------------------------------------------------------------------
# kubectl warning lines


def _visible(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_warning_lines_are_short_and_lose_nothing() -> None:
    long_key = "jobmanager.memory." + "x" * 150
    text = f"flinkmem: {long_key} is set both flat and nested; the operator may use either. " * 3
    lines = warning_lines(text)
    assert len(lines) > 1
    assert all(len(line) <= WARNING_LIMIT for line in lines)
    assert _visible("".join(lines)) == _visible(text)


def test_short_warning_is_one_line() -> None:
    assert warning_lines("heap is small") == ["heap is small"]
    assert warning_lines("") == [""]
    assert WARNING_LIMIT == 120


def test_validation_warnings_fit_kubectl_lines() -> None:
    conf = {
        "jobmanager.memory.jvm-overhead.min": "12345678",
        "jobmanager.memory.jvm-overhead.max": "1234567890123",
        P: "1600m",
        "jobmanager": {"memory": {"process.size": "1600m"}},
        "env.java.opts.jobmanager": "-XX:MaxMetaspaceSize=512m -XX:MaxDirectMemorySize=1g",
    }
    body = deployment(conf=conf, memory="1677721600", version="v1_20")
    body["spec"]["flinkConfiguration"]["jobmanager.heap.size"] = "1g"
    result = validate_deployment(body)
    assert result.warnings
    for warning in result.warnings:
        lines = warning_lines(warning.message)
        assert all(len(line) <= WARNING_LIMIT for line in lines), lines
        assert _visible("".join(lines)) == _visible(warning.message)


# ---------------------------------------------------------------------------------------------
# 1.x legacy heap: Flink's client reads it as the process size, the pod's start script as the heap


def test_legacy_heap_on_1x_is_sized_as_the_start_script_reads_it() -> None:
    result = validate_deployment(deployment(conf={"jobmanager.heap.size": "1g"}, version="v1_20"))
    assert result.valid
    memory, container = jm(result).memory, jm(result).container
    assert memory is not None and container is not None
    # In the pod, heap 1 GiB as configured: with the default off-heap, metaspace and overhead that is
    # the same process as jobmanager.memory.process.size: 1600m (whose heap is 1 GiB, spec vector C01).
    assert memory.jvm_heap == 1 << 30
    assert memory.total_process == 1600 * MIB
    assert container.request == "1600Mi"
    assert container.flink_request_mib == 1024  # Flink's client: the same 1g read as total process memory
    assert "legacy-heap-read-twice" in [w.code for w in result.warnings]


def test_legacy_heap_env_reaches_only_the_start_script_in_the_pod() -> None:
    # FLINK_JM_HEAP comes from the pod template, so Flink's client never sees it; BashJavaUtils in the
    # pod maps it onto the heap, which a 1600m process cannot hold: the JobManager would not start.
    result = validate_deployment(
        deployment(conf={"jobmanager.memory.process.size": "1600m"}, env={"FLINK_JM_HEAP": "2g"}, version="v1_20")
    )
    assert conflict_codes(result) == ["process-below-flink-plus-metaspace"]
    fine = validate_deployment(deployment(conf={"jobmanager.memory.process.size": "1600m"}, version="v1_20"))
    assert fine.valid


def test_legacy_heap_on_2x_is_ignored_and_refused_without_another_size() -> None:
    result = validate_deployment(deployment(conf={"jobmanager.heap.size": "1g"}, version="v2_3"))
    assert conflict_codes(result) == ["no-sizing-option"]
    assert "legacy-heap-read-twice" not in [w.code for w in result.warnings]


# ---------------------------------------------------------------------------------------------
# resolutions are cached; the cache must never confuse two configurations


def test_repeated_validation_gives_equal_answers_refusals_included() -> None:
    bad = deployment(conf={P: "100m"})
    first, second = validate_deployment(bad), validate_deployment(bad)
    assert first.conflicts == second.conflicts and not first.valid
    good = deployment()
    assert validate_deployment(good).to_dict() == validate_deployment(good).to_dict()


def test_the_cache_tells_apart_values_python_finds_equal() -> None:
    def tm(slots: object) -> RoleValidation:
        config = {"taskmanager.memory.process.size": "2g", "taskmanager.numberOfTaskSlots": slots}
        source = FlinkSource("file", "config.yaml", "", config, FlinkVersion(2, 3), DeploymentMode.NATIVE)  # type: ignore[arg-type]
        return validate_role(source, TASKMANAGER)

    # A YAML `true` is not the number 1 to Flink, though True == 1 in Python.
    assert tm(1).valid
    assert not tm(True).valid
    assert tm(1).valid
