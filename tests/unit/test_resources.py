"""`spec.<role>.resources` mapped as the operator's FlinkConfigBuilder (main, FLINK-33548) maps it.

Expected configurations come from the operator's source and its own tests on main
(`FlinkConfigBuilderTest`: requests 1Gi / limits 2048Mi make a memory factor 2.0, cpu 500m / 1 a CPU
factor 2.0, requests.memory 2Gi is 2147483648 bytes, limits alone set memory and CPU and no factor;
`DefaultValidatorTest`: a request above its limit, "0" and "-2Gi" refused), and the factors fabric8
computes for mixed units (research notes of issue 20, §2.3, run with fabric8 7.8.0).
"""

from __future__ import annotations

from typing import Any

import pytest

from flinkmem.decisions.validation import validate_deployment
from flinkmem.sources.flinkdeployment import SpecError, from_flinkdeployment, memory_inputs
from flinkmem.sources.resources import has_resource_requirements

GIB = 1 << 30
JM_SIZE = "jobmanager.memory.process.size"
TM_SIZE = "taskmanager.memory.process.size"


def deployment(jm: dict[str, Any], tm: dict[str, Any] | None = None, version: str = "v1_20") -> dict[str, Any]:
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "res", "namespace": "jobs"},
        "spec": {
            "flinkVersion": version,
            "jobManager": jm,
            "taskManager": tm if tm is not None else {"resources": {"requests": {"memory": "2Gi", "cpu": "1"}}},
        },
    }


def jm_config(jm: dict[str, Any], version: str = "v1_20") -> dict[str, object]:
    source = from_flinkdeployment(deployment(jm, version=version))
    return {k: v for k, v in source.config.items() if "jobmanager" in k}


def test_requests_and_limits_become_size_cpu_and_both_factors() -> None:
    resources = {"requests": {"memory": "1Gi", "cpu": "500m"}, "limits": {"memory": "2048Mi", "cpu": "1"}}
    assert jm_config({"resources": resources}) == {
        JM_SIZE: f"{GIB}b",
        "kubernetes.jobmanager.cpu.amount": "0.5",
        "kubernetes.jobmanager.cpu.limit-factor": "2.0",
        "kubernetes.jobmanager.memory.limit-factor": "2.0",
    }


def test_limits_alone_set_memory_and_cpu_and_no_factor() -> None:
    assert jm_config({"resources": {"limits": {"memory": "2Gi", "cpu": 2}}}) == {
        JM_SIZE: f"{2 * GIB}b",
        "kubernetes.jobmanager.cpu.amount": "2.0",
    }


def test_requests_alone_leave_the_factor_at_flinks_default() -> None:
    assert jm_config({"resources": {"requests": {"memory": "2Gi"}}}) == {JM_SIZE: f"{2 * GIB}b"}


def test_memory_is_read_flinks_way_first_and_the_factor_kubernetes_way() -> None:
    # 2048m is 2 GiB to Flink but 2.048 bytes to Kubernetes: the operator's factor is 4Gi / 2.048.
    source = from_flinkdeployment(
        deployment({"resources": {"requests": {"memory": "2048m"}, "limits": {"memory": "4Gi"}}})
    )
    assert source.config[JM_SIZE] == f"{2 * GIB}b"
    assert source.config["kubernetes.jobmanager.memory.limit-factor"] == "2.097152E9"
    notice = next(n for n in source.notices if n.code == "resources-limit-factor-units")
    assert "2.097152E9" in notice.message and "Mi, Gi" in notice.message


@pytest.mark.parametrize(
    ("request_", "limit", "factor"),
    [("2Gi", "4Gi", "2.0"), ("2048m", "4096m", "2.0"), ("1Gi", "1536Mi", "1.5"), ("2048Mi", "3000Mi", "1.46484375")],
)
def test_factors_of_one_unit_need_no_warning(request_: str, limit: str, factor: str) -> None:
    source = from_flinkdeployment(
        deployment({"resources": {"requests": {"memory": request_}, "limits": {"memory": limit}}})
    )
    assert source.config["kubernetes.jobmanager.memory.limit-factor"] == factor
    assert "resources-limit-factor-units" not in [n.code for n in source.notices]


def test_resources_win_entirely_over_resource_with_a_warning() -> None:
    jm = {"resource": {"memory": "4g", "cpu": 2}, "resources": {"requests": {"cpu": "1"}}}
    source = from_flinkdeployment(deployment(jm))
    # resource.memory is not used, even though resources has no memory (FlinkConfigBuilder.applyResourceConfig).
    assert JM_SIZE not in source.config
    assert source.config["kubernetes.jobmanager.cpu.amount"] == "1.0"
    ignored = next(n for n in source.notices if n.code == "resource-ignored")
    assert "jobManager.resource (cpu=2, memory=4g) is ignored" in ignored.message
    # ... so the JobManager has no memory at all, and that is refused naming Flink's rule.
    assert not validate_deployment(deployment(jm)).valid


def test_empty_resources_leave_resource_in_charge() -> None:
    empties: list[dict[str, Any]] = [{}, {"requests": {}}, {"claims": [{"name": "gpu"}]}]
    for empty in empties:
        assert jm_config({"resource": {"memory": "1g"}, "resources": empty}) == {JM_SIZE: f"{GIB}b"}
        assert not has_resource_requirements(empty)


def test_an_invalid_resource_memory_is_refused_even_when_resources_wins() -> None:
    # DefaultValidator still runs validateResources on the deprecated field.
    with pytest.raises(SpecError) as info:
        from_flinkdeployment(deployment({"resource": {"memory": "1.5g"}, "resources": {"requests": {"memory": "2Gi"}}}))
    assert info.value.field == "spec.jobManager.resource.memory"


def test_cpu_keeps_the_legacy_key_before_flink_1_17() -> None:
    config = jm_config({"resources": {"requests": {"cpu": "250m", "memory": "1g"}}}, version="v1_16")
    assert config["kubernetes.jobmanager.cpu"] == config["kubernetes.jobmanager.cpu.amount"] == "0.25"


def test_process_size_in_the_configuration_is_replaced_with_a_notice() -> None:
    obj = deployment({"resources": {"requests": {"memory": "2Gi"}}})
    obj["spec"]["flinkConfiguration"] = {JM_SIZE: "1g"}
    source = from_flinkdeployment(obj)
    assert source.config[JM_SIZE] == f"{2 * GIB}b"
    notice = next(n for n in source.notices if n.code == "process-size-overridden")
    assert notice.message == f"jobManager.resources.requests.memory=2Gi replaces {JM_SIZE}=1g"


def test_taskmanager_gets_its_own_mapping() -> None:
    tm = {"resources": {"requests": {"memory": "4Gi", "cpu": "2"}, "limits": {"memory": "6Gi"}}}
    source = from_flinkdeployment(deployment({"resource": {"memory": "1g"}}, tm))
    assert source.config[TM_SIZE] == f"{4 * GIB}b"
    assert source.config["kubernetes.taskmanager.cpu.amount"] == "2.0"
    assert source.config["kubernetes.taskmanager.memory.limit-factor"] == "1.5"


@pytest.mark.parametrize(
    ("resources", "code", "field", "fragment"),
    [
        (
            {"requests": {"memory": "4Gi"}, "limits": {"memory": "2Gi"}},
            "resources-request-above-limit",
            "spec.jobManager.resources.requests.memory",
            "4Gi is above limits.memory 2Gi",
        ),
        (
            {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}},
            "resources-request-above-limit",
            "spec.jobManager.resources.requests.cpu",
            "2 is above limits.cpu 1500m",
        ),
        ({"requests": {"memory": "0"}}, "resources-not-positive", "spec.jobManager.resources.requests.memory", "0"),
        ({"requests": {"cpu": "0"}}, "resources-not-positive", "spec.jobManager.resources.requests.cpu", "CPU"),
        (
            {"requests": {"memory": "-2Gi"}},
            "resources-quantity-unreadable",
            "spec.jobManager.resources.requests.memory",
            "'-2147483648'",
        ),
        (
            {"requests": {"memory": "1.5Gi"}},
            "resources-quantity-unreadable",
            "spec.jobManager.resources.requests.memory",
            "'1610612736.0'",
        ),
        (
            # Checked although the request is the one used (validateQuantities reads every entry).
            {"requests": {"memory": "2Gi"}, "limits": {"memory": "invalid"}},
            "resources-quantity-unreadable",
            "spec.jobManager.resources.limits.memory",
            "Character I",
        ),
        (
            {"requests": {"cpu": "1 core"}},
            "resources-quantity-unreadable",
            "spec.jobManager.resources.requests.cpu",
            "not a CPU quantity",
        ),
        (
            # Flink reads 2g, but the factor needs fabric8's number of it: NumberFormatException at deploy.
            {"requests": {"memory": "2g"}, "limits": {"memory": "4g"}},
            "resources-limit-factor-unreadable",
            "spec.jobManager.resources.requests.memory",
            "such as 2Gi and 4Gi",
        ),
        (
            # Equal to Flink (2 GiB each), but 2e9 / 2^31 to Kubernetes: a factor Flink refuses.
            {"requests": {"memory": "2048Mi"}, "limits": {"memory": "2G"}},
            "resources-limit-factor-below-one",
            "spec.jobManager.resources.limits.memory",
            "0.9313225746154785",
        ),
        ({"requests": {"memory": {"amount": "2"}}}, "invalid-spec", "spec.jobManager.resources.requests.memory", ""),
        ({"requests": ["memory"]}, "invalid-spec", "spec.jobManager.resources.requests", ""),
    ],
)
def test_what_the_operator_refuses_is_refused_with_its_own_message(
    resources: dict[str, Any], code: str, field: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as info:
        from_flinkdeployment(deployment({"resources": resources}))
    assert (info.value.code, info.value.field) == (code, field)
    assert fragment in info.value.problem
    validation = validate_deployment(deployment({"resources": resources}))
    assert [c.code for c in validation.conflicts] == [code]


def test_resources_count_as_memory_inputs() -> None:
    a = deployment({"resources": {"requests": {"memory": "2Gi"}}})
    b = deployment({"resources": {"requests": {"memory": "3Gi"}}})
    assert memory_inputs(a) != memory_inputs(b)


def test_the_issues_example_resolves_from_the_request() -> None:
    """The case of issue 20: a 2Gi request next to a 3g heap was admitted (the heap alone was read) and
    its TaskManager, which the operator sizes to 2 GiB, was refused for having no memory size."""
    obj = deployment(
        {"resources": {"requests": {"memory": "2Gi"}}},
        {"resources": {"requests": {"memory": "2Gi"}}},
    )
    obj["spec"]["flinkConfiguration"] = {"jobmanager.memory.heap.size": "3g"}
    validation = validate_deployment(obj)
    assert [c.code for c in validation.conflicts] == ["process-below-flink-plus-metaspace"]
    assert validation.conflicts[0].message.startswith("JobManager: jobmanager.memory.process.size (2 GiB)")
    tm = validation.roles[1]
    assert tm.valid and tm.memory is not None and tm.memory.total_process == 2 * GIB
