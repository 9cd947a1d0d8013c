"""`spec.<role>.resources` against the real classes: the configuration the operator writes, then Flink on it.

Two referees, both real code: `OperatorResourcesHarness.java` reads each `resources` with Flink's own
`MemorySize` and fabric8's `Quantity` (shaded in Flink 2.3's flink-dist: kubernetes-model-core 7.3.1, the
operator 1.15.0's; its main branch's 7.8.0 reads these texts alike) following the operator's main branch
(`FlinkConfigBuilder.setResourceRequirements`, `ResourceConfigUtils`, `DefaultValidator`); then real Flink
resolves that effective configuration (the reference harness: JobManager process and pod, TaskManager
process and the pod Flink's own KubernetesTaskManagerFactory builds, with the limit factors).

flinkmem must refuse exactly what the operator refuses (its validator, its builder's failures, and a
memory limit factor Flink refuses), write the same configuration otherwise, and resolve it as Flink does.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from flinkmem.decisions.validation import validate_role
from flinkmem.engine.sizes import SizeParseError, parse_memory_size
from flinkmem.sources.flinkdeployment import SpecError, from_flinkdeployment
from flinkmem.sources.roles import JOBMANAGER, TASKMANAGER, Role
from tests.differential.flinkref import run_main, run_reference

pytestmark = pytest.mark.differential

FLINK = "2.3.0"  # shades fabric8 7.3.1
MEMORY = [
    "2Gi", "1536Mi", "3000Mi", "2048Mi", "4Gi", "1Gi", "2G", "2000M", "1.5Gi", "0.5Gi", "1Ti", "2147483648",
    2147483648, 1073741824, "2g", "2gb", "1g", "1536m", "2048m", "4096m", "512mi", "1e9", "2e9", "0", "-1Gi",
    "1.0Gi", "2 Gi", "invalid", "1500000000", "3g", "6Gi", "100",
]  # fmt: skip
CPU = ["500m", "1", "2", 1, 2, "250m", "1.5", "100m", "0", "-1", "1 core", "1e0", "2000m"]
KEYS = ("memory.process.size", "cpu.amount", "cpu.limit-factor", "memory.limit-factor")

FIXED: list[dict[str, Any]] = [
    {"requests": {"memory": "1Gi", "cpu": "500m"}, "limits": {"memory": "2048Mi", "cpu": "1"}},
    {"requests": {"memory": "2Gi"}},
    {"limits": {"memory": "2Gi", "cpu": "2"}},
    {"requests": {"memory": "2048m"}, "limits": {"memory": "4Gi"}},
    {"requests": {"memory": "1024m"}, "limits": {"memory": "2Gi"}},
    {"requests": {"memory": "2G"}, "limits": {"memory": "2Gi"}},
    {"requests": {"memory": "2048Mi"}, "limits": {"memory": "3000Mi"}},
    {"requests": {"memory": "2g"}, "limits": {"memory": "4g"}},
    {"requests": {"memory": "4Gi"}, "limits": {"memory": "2Gi"}},
    {"requests": {"memory": "2048Mi"}, "limits": {"memory": "2G"}},
    {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}},
]


def _generated(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    found: list[dict[str, Any]] = []
    for _ in range(count):
        resources: dict[str, Any] = {}
        for section in ("requests", "limits"):
            values: dict[str, Any] = {}
            if rng.random() < 0.7:
                values["memory"] = rng.choice(MEMORY)
            if rng.random() < 0.5:
                values["cpu"] = rng.choice(CPU)
            if values or rng.random() < 0.3:
                resources[section] = values
        found.append(resources)
    return found


def _deployment(role: Role, resources: dict[str, Any]) -> dict[str, Any]:
    other = TASKMANAGER if role is JOBMANAGER else JOBMANAGER
    return {
        "metadata": {"name": "r", "namespace": "n"},
        "spec": {
            "flinkVersion": "v2_3",
            role.spec_field: {"resources": resources},
            other.spec_field: {"resource": {"memory": "2g"}},
        },
    }


def _operator_rejects(answer: dict[str, Any], role: Role) -> bool:
    """The validator, the builder, or Flink's check of the memory limit factor (at least 1) when it builds
    the pod (tests/differential/test_limit_factors.py holds flinkmem to that check on its own)."""
    if answer["validatorError"] or answer["deployError"]:
        return True
    factor = answer["config"].get(f"kubernetes.{role.key}.memory.limit-factor")
    return factor is not None and not float(factor) >= 1


def _bytes(text: str) -> int | None:
    try:
        return parse_memory_size(text)
    except SizeParseError:
        return None


@pytest.mark.parametrize("role", [JOBMANAGER, TASKMANAGER], ids=lambda r: r.key)
def test_resources_refused_written_and_resolved_as_the_operator_and_flink_do(role: Role) -> None:
    cases = FIXED + _generated(400, seed=20 + len(role.key))
    answers = run_main(
        FLINK, "OperatorResourcesHarness", [{"id": i, "role": role.key, "resources": r} for i, r in enumerate(cases)]
    )
    accepted: list[tuple[int, dict[str, str], Any]] = []
    for index, (resources, answer) in enumerate(zip(cases, answers, strict=True)):
        try:
            source = from_flinkdeployment(_deployment(role, resources))
        except SpecError as exc:
            assert _operator_rejects(answer, role), (resources, exc, answer)
            continue
        assert not _operator_rejects(answer, role), (resources, answer)
        theirs: dict[str, str] = answer["config"]
        ours = {
            k: v
            for k, v in source.config.items()
            if k.startswith(tuple(f"{p}{role.key}." for p in ("", "kubernetes.")))
        }
        assert {k for k in ours if k.endswith(KEYS)} == set(theirs), (resources, ours, theirs)
        for key, text in theirs.items():
            if key.endswith("process.size"):
                assert _bytes(str(ours[key])) == _bytes(text), (resources, key, ours[key], text)
            else:
                assert ours[key] == text, (resources, key)
        if theirs:
            accepted.append((index, theirs, source))

    # Real Flink resolves the operator's configuration as flinkmem resolves its own.
    records = [
        {"id": index, "role": role.key, "mode": "native", "flinkVersion": "2.3", "config": config}
        for index, config, _ in accepted
    ]
    flink = {r["id"]: r for r in run_reference(FLINK, records, verify=role is TASKMANAGER)}
    for index, _, source in accepted:
        result = validate_role(source, role)
        reference = flink[index]
        assert reference["valid"] == (result.memory is not None and result.container is not None), (
            cases[index],
            reference.get("error"),
            result.conflicts,
        )
        if not reference["valid"]:
            continue
        assert result.memory is not None and result.container is not None
        assert result.memory.total_process == reference["totalProcessMemory"]
        assert result.memory.jvm_args == reference["jvmArgs"]
        k8s = reference["k8s"]
        if role is JOBMANAGER:
            assert (result.container.flink_request_mib, result.container.flink_limit_mib) == (
                k8s["k8sMemoryMiB"],
                k8s["k8sLimitMiB"],
            ), cases[index]
        else:
            assert k8s["memory"] == f"{result.container.flink_request_mib}Mi", cases[index]
            assert k8s["memoryLimit"] == f"{result.container.flink_limit_mib}Mi", cases[index]
    assert len(accepted) > 100  # the generator reaches the accepted paths, not only refusals
