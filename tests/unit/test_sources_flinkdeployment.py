"""From a FlinkDeployment to engine input, as the Apache Flink Kubernetes Operator builds it
(operator notes, sections 1.2-1.5): configuration flattening, `jobManager.resource.memory`
overriding `jobmanager.memory.process.size`, the operator's memory-string parsing, version and
mode, and the JobManager container of the pod templates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flinkmem.conventions import DEFAULT_CONTAINER
from flinkmem.engine import DeploymentMode, FlinkVersion, JobManagerMemory, MemoryConflict, Rule, resolve_jobmanager
from flinkmem.sources.flinkdeployment import (
    SpecError,
    flatten_configuration,
    from_flinkdeployment,
    operator_memory_bytes,
)
from flinkmem.sources.model import FlinkSource
from flinkmem.sources.roles import JOBMANAGER

MIB = 1 << 20
GIB = 1 << 30
P = "jobmanager.memory.process.size"


def deployment(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"flinkVersion": "v1_20"}
    body.update(spec)
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "demo", "namespace": "team-a"},
        "spec": body,
    }


def resolve_jm(source: FlinkSource) -> JobManagerMemory:
    """The JobManager as the source describes it, read the way the mode reads legacy options."""
    return resolve_jobmanager(source.config, source.version, source.mode, source.legacy_heap_env(JOBMANAGER))


def main_container(**fields: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": DEFAULT_CONTAINER, **fields}]}}


# ---------------------------------------------------------------------------------------------
# flinkConfiguration


def test_flat_configuration() -> None:
    spec = from_flinkdeployment(deployment(flinkConfiguration={P: "2g", "taskmanager.numberOfTaskSlots": "2"}))
    assert spec.config == {P: "2g", "taskmanager.numberOfTaskSlots": "2"}
    assert (spec.name, spec.namespace) == ("demo", "team-a")


def test_nested_configuration_flattens_with_dots_and_java_text() -> None:
    conf = {
        "jobmanager": {
            "memory": {
                "process.size": "2g",
                "jvm-overhead": {"fraction": 0.25, "min": 100},
                "enable-jvm-direct-memory-limit": True,
            }
        },
        "env.java.opts.all": ["-Da=1", "-Db=2"],
        "kubernetes.jobmanager.memory.limit-factor": 1.0,
        "big": 1e21,
    }
    config, notices = flatten_configuration(conf)
    assert config == {
        P: "2g",
        "jobmanager.memory.jvm-overhead.fraction": "0.25",
        "jobmanager.memory.jvm-overhead.min": "100",
        "jobmanager.memory.enable-jvm-direct-memory-limit": "true",
        "env.java.opts.all": "-Da=1;-Db=2",
        "kubernetes.jobmanager.memory.limit-factor": "1.0",
        "big": "1.0E21",
    }
    assert notices == []


def test_nested_configuration_resolves_like_flat() -> None:
    nested = from_flinkdeployment(
        deployment(flinkConfiguration={"jobmanager": {"memory": {"process": {"size": "2g"}}}})
    )
    memory = resolve_jm(nested)
    assert (memory.heap, memory.overhead) == (1530082096, 214748368)  # C02 / C57


def test_flat_and_nested_spelling_of_one_key_is_noticed() -> None:
    config, notices = flatten_configuration({P: "1600m", "jobmanager": {"memory": {"process.size": "2g"}}})
    assert set(config) == {P}
    assert config[P] in ("1600m", "2g")
    assert [n.code for n in notices] == ["duplicate-config-key"]
    assert P in notices[0].message


def test_missing_configuration_is_empty() -> None:
    spec = from_flinkdeployment(deployment(jobManager={"resource": {"memory": "2g"}}))
    assert spec.config == {P: f"{2 * GIB}b"}


# ---------------------------------------------------------------------------------------------
# jobManager.resource.memory


def test_resource_memory_overrides_process_size_with_a_notice() -> None:
    spec = from_flinkdeployment(
        deployment(flinkConfiguration={P: "1600m"}, jobManager={"resource": {"memory": "2g", "cpu": 1}})
    )
    assert spec.resource_memory == {"jobmanager": "2g"}
    assert [n.code for n in spec.notices] == ["process-size-overridden"]
    assert spec.notices[0].message == "jobManager.resource.memory=2g replaces jobmanager.memory.process.size=1600m"
    memory = resolve_jm(spec)
    assert memory.total_process == 2 * GIB
    assert memory.heap == 1530082096  # C02


def test_resource_memory_without_process_size_has_no_override_notice() -> None:
    spec = from_flinkdeployment(deployment(jobManager={"resource": {"memory": "1600m"}}))
    assert spec.notices == ()
    assert resolve_jm(spec).heap == 1073741824  # C01


def test_resource_memory_keeps_other_memory_options() -> None:
    # 1g resource memory plus heap 2g: admitted by the operator, refused by Flink (notes, 1.4).
    spec = from_flinkdeployment(
        deployment(
            flinkConfiguration={"jobmanager.memory.heap.size": "2g"},
            jobManager={"resource": {"memory": "1g"}},
        )
    )
    assert spec.config["jobmanager.memory.heap.size"] == "2g"
    with pytest.raises(MemoryConflict):
        resolve_jm(spec)


def test_bare_number_resource_memory_is_noticed() -> None:
    spec = from_flinkdeployment(deployment(jobManager={"resource": {"memory": "2048"}}))
    assert spec.config[P] == "2048b"
    assert "bare-number-size" in [n.code for n in spec.notices]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2g", 2 * GIB),
        ("2gb", 2 * GIB),
        ("2G", 2 * GIB),  # binary here, unlike Kubernetes
        ("2 g", 2 * GIB),
        ("2gib", 2 * GIB),
        ("2Gi", 2 * GIB),
        ("2gi", 2 * GIB),
        ("2 Gi", 2 * GIB),
        ("2048Mi", 2 * GIB),
        ("512m", 512 * MIB),  # mebibytes, never milli
        ("1024m", GIB),
        ("512mi", 536870912),
        ("1000000b", 1000000),
        ("1e6", 1000000),
        ("1e6 b", 1000000),
        ("100", 100),  # bytes
        ("2048", 2048),
        ("1600 MB", 1600 * MIB),
    ],
)
def test_operator_memory_parsing(text: str, expected: int) -> None:
    assert operator_memory_bytes(text) == expected


@pytest.mark.parametrize("text", ["1.5g", "abc", "-1Gi", "", "2 pebibytes", "0.5Gi"])
def test_operator_memory_refused(text: str) -> None:
    with pytest.raises(ValueError):
        operator_memory_bytes(text)
    with pytest.raises(SpecError) as info:
        from_flinkdeployment(deployment(jobManager={"resource": {"memory": text}}))
    assert info.value.field == "spec.jobManager.resource.memory"


def test_resource_memory_as_a_yaml_number_is_bytes() -> None:
    spec = from_flinkdeployment(deployment(jobManager={"resource": {"memory": 1677721600}}))
    assert spec.config[P] == "1677721600b"


@pytest.mark.parametrize("memory", ["2Gi", "2048Mi", "2g", "2048m"])
def test_resource_memory_spellings_resolve_alike(memory: str) -> None:
    spec = from_flinkdeployment(deployment(jobManager={"resource": {"memory": memory}}))
    assert resolve_jm(spec).total_process == 2 * GIB


# ---------------------------------------------------------------------------------------------
# flinkVersion and mode


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v1_20", FlinkVersion(1, 20)),
        ("v1_15", FlinkVersion(1, 15)),
        ("v2_0", FlinkVersion(2, 0)),
        ("v2_2", FlinkVersion(2, 2)),
        # Read as text only: whether flinkmem supports the line is asked later (engine.lines).
        ("v1_11", FlinkVersion(1, 11)),
        ("v2_4", FlinkVersion(2, 4)),
        ("v3_0", FlinkVersion(3, 0)),
    ],
)
def test_flink_version(text: str, expected: FlinkVersion) -> None:
    assert from_flinkdeployment(deployment(flinkVersion=text)).version == expected


@pytest.mark.parametrize("value", [None, "", "banana", 120, "v1", "1.20.3.4"])
def test_flink_version_refused(value: object) -> None:
    body = deployment()
    body["spec"]["flinkVersion"] = value
    with pytest.raises(SpecError) as info:
        from_flinkdeployment(body)
    assert info.value.field == "spec.flinkVersion"


def test_flink_version_missing() -> None:
    body = deployment()
    del body["spec"]["flinkVersion"]
    with pytest.raises(SpecError) as info:
        from_flinkdeployment(body)
    assert info.value.field == "spec.flinkVersion"
    assert str(info.value).startswith("spec.flinkVersion")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, DeploymentMode.NATIVE), ("native", DeploymentMode.NATIVE), ("standalone", DeploymentMode.STANDALONE)],
)
def test_mode(value: str | None, expected: DeploymentMode) -> None:
    body = deployment()
    if value is not None:
        body["spec"]["mode"] = value
    assert from_flinkdeployment(body).mode is expected


@pytest.mark.parametrize("value", ["hybrid", 1, ["native"]])
def test_mode_refused(value: object) -> None:
    with pytest.raises(SpecError) as info:
        from_flinkdeployment(deployment(mode=value))
    assert info.value.field == "spec.mode"


def test_legacy_mapping_follows_version_and_mode() -> None:
    conf = {"jobmanager.heap.size": "1g"}
    native = resolve_jm(from_flinkdeployment(deployment(flinkConfiguration=conf)))
    standalone = resolve_jm(from_flinkdeployment(deployment(flinkConfiguration=conf, mode="standalone")))
    assert native.total_process == GIB  # the native client reads it as total process memory
    assert standalone.heap == GIB  # the start scripts read it as the heap
    with pytest.raises(MemoryConflict) as info:
        resolve_jm(from_flinkdeployment(deployment(flinkConfiguration=conf, flinkVersion="v2_1")))
    assert info.value.rule is Rule.NO_SIZING_OPTION


# ---------------------------------------------------------------------------------------------
# pod templates


def test_pod_template_limit_request_and_env() -> None:
    template = main_container(
        resources={"limits": {"memory": "2Gi"}, "requests": {"memory": "1G"}},
        env=[{"name": "FLINK_JM_HEAP", "value": "1g"}, {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {}}}],
    )
    spec = from_flinkdeployment(deployment(podTemplate=template))
    assert spec.container(JOBMANAGER).memory_limit == 2 * GIB
    assert spec.container(JOBMANAGER).memory_limit_text == "2Gi"
    assert spec.container(JOBMANAGER).memory_request == 10**9  # Kubernetes G is decimal
    assert dict(spec.container(JOBMANAGER).env) == {"FLINK_JM_HEAP": "1g"}
    assert spec.legacy_heap_env(JOBMANAGER) == "1g"


def test_jobmanager_pod_template_wins_over_the_shared_one() -> None:
    shared = main_container(
        resources={"limits": {"memory": "2Gi"}, "requests": {"memory": "1Gi"}},
        env=[{"name": "FLINK_JM_HEAP", "value": "1g"}, {"name": "A", "value": "shared"}],
    )
    jm = main_container(
        resources={"limits": {"memory": "3Gi"}},
        env=[{"name": "A", "value": "jm"}, {"name": "FLINK_ENV_JAVA_OPTS_JM", "value": "-Xss1m"}],
    )
    spec = from_flinkdeployment(deployment(podTemplate=shared, jobManager={"podTemplate": jm}))
    assert spec.container(JOBMANAGER).memory_limit == 3 * GIB
    assert spec.container(JOBMANAGER).memory_limit_text == "3Gi"
    assert spec.container(JOBMANAGER).memory_request == GIB  # only the shared template sets it
    assert dict(spec.container(JOBMANAGER).env) == {
        "FLINK_JM_HEAP": "1g",
        "A": "jm",
        "FLINK_ENV_JAVA_OPTS_JM": "-Xss1m",
    }


def test_template_limits_use_kubernetes_quantities() -> None:
    # In a pod template "1600m" is 1.6 bytes (milli), rounded up to whole bytes.
    spec = from_flinkdeployment(deployment(podTemplate=main_container(resources={"limits": {"memory": "1600m"}})))
    assert spec.container(JOBMANAGER).memory_limit == 2


def test_other_containers_are_ignored_and_the_name_is_configurable() -> None:
    template = {
        "spec": {
            "containers": [
                {"name": "sidecar", "resources": {"limits": {"memory": "64Mi"}}},
                {"name": "jm", "resources": {"limits": {"memory": "4Gi"}}},
            ]
        }
    }
    assert from_flinkdeployment(deployment(podTemplate=template)).container(JOBMANAGER).memory_limit is None
    named = from_flinkdeployment(deployment(podTemplate=template), container_name="jm")
    assert named.container(JOBMANAGER).memory_limit == 4 * GIB


def test_legacy_env_from_the_template_reaches_1x() -> None:
    template = main_container(env=[{"name": "FLINK_JM_HEAP", "value": "1g"}])
    spec = from_flinkdeployment(
        deployment(mode="standalone", flinkConfiguration={P: "1600m"}, jobManager={"podTemplate": template})
    )
    assert resolve_jm(spec).heap == GIB  # L04


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("spec"), "spec"),
        (lambda d: d.__setitem__("spec", "text"), "spec"),
        (lambda d: d.__setitem__("metadata", ["x"]), "metadata"),
        (lambda d: d["spec"].__setitem__("flinkConfiguration", ["a"]), "spec.flinkConfiguration"),
        (
            lambda d: d["spec"].__setitem__("flinkConfiguration", {"jobmanager": {"memory": {"process.size": None}}}),
            "spec.flinkConfiguration.jobmanager.memory.process.size",
        ),
        (
            lambda d: d["spec"].__setitem__("flinkConfiguration", {"k": {"a": [{"x": 1}]}}),
            "spec.flinkConfiguration.k.a",
        ),
        (lambda d: d["spec"].__setitem__("jobManager", ["x"]), "spec.jobManager"),
        (lambda d: d["spec"].__setitem__("jobManager", {"resource": "2g"}), "spec.jobManager.resource"),
        (
            lambda d: d["spec"].__setitem__("jobManager", {"resource": {"memory": ["2g"]}}),
            "spec.jobManager.resource.memory",
        ),
        (lambda d: d["spec"].__setitem__("podTemplate", "template"), "spec.podTemplate"),
        (lambda d: d["spec"].__setitem__("podTemplate", {"spec": "x"}), "spec.podTemplate.spec"),
        (
            lambda d: d["spec"].__setitem__("podTemplate", {"spec": {"containers": "c"}}),
            "spec.podTemplate.spec.containers",
        ),
        (
            lambda d: d["spec"].__setitem__("podTemplate", {"spec": {"containers": ["c"]}}),
            "spec.podTemplate.spec.containers[0]",
        ),
        (
            lambda d: d["spec"].__setitem__("jobManager", {"podTemplate": main_container(resources="2Gi")}),
            "spec.jobManager.podTemplate.spec.containers[flink-main-container].resources",
        ),
        (
            lambda d: d["spec"].__setitem__("podTemplate", main_container(resources={"limits": {"memory": "lots"}})),
            "spec.podTemplate.spec.containers[flink-main-container].resources.limits.memory",
        ),
        (
            lambda d: d["spec"].__setitem__("podTemplate", main_container(resources={"limits": "2Gi"})),
            "spec.podTemplate.spec.containers[flink-main-container].resources.limits",
        ),
        (
            lambda d: d["spec"].__setitem__("podTemplate", main_container(env={"A": "b"})),
            "spec.podTemplate.spec.containers[flink-main-container].env",
        ),
        (
            lambda d: d["spec"].__setitem__("podTemplate", main_container(env=[{"value": "b"}])),
            "spec.podTemplate.spec.containers[flink-main-container].env[0]",
        ),
    ],
)
def test_malformed_specs(mutate: Callable[[dict[str, Any]], object], field: str) -> None:
    body = deployment()
    mutate(body)
    with pytest.raises(SpecError) as info:
        from_flinkdeployment(body)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert info.value.problem


def test_not_an_object() -> None:
    with pytest.raises(SpecError):
        from_flinkdeployment(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_configuration_nested_beyond_any_option_key_is_refused_naming_where() -> None:
    conf: dict[str, object] = {"jobmanager.memory.process.size": "2g"}
    node = conf
    for _ in range(900):  # deep enough to reach Python's recursion limit in a recursive walk
        child: dict[str, object] = {}
        node["k"] = child
        node = child
    with pytest.raises(SpecError) as info:
        flatten_configuration(conf)
    assert info.value.field == "spec.flinkConfiguration." + ".".join(["k"] * 64)[:200]
    assert "more than 64 levels" in info.value.problem
    # 64 levels are still read.
    shallow: dict[str, object] = {}
    node = shallow
    for _ in range(63):
        node["k"] = child = {}
        node = child
    node["leaf"] = "x"
    assert flatten_configuration(shallow)[0] == {".".join(["k"] * 63) + ".leaf": "x"}
