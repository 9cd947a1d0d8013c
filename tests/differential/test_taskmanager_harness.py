"""The TaskManager half of the reference harness alone: real Flink reproduces the verified vectors.

The expectations come from the TaskManager notes (section 12) and from Flink's own
TaskExecutorProcessUtilsTest / ProcessMemoryUtilsTestBase scenarios (tmvectors.py). A failure here
means the harness does not drive Flink the way bin/taskmanager.sh and the native resource manager
do. With --verify the harness also runs the launcher's own method and builds the real pod; both
must agree with what it reports.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.differential import flinkref
from tests.differential.tmvectors import SCENARIOS, VECTORS, TmFails, TmOk, scenario_records, vector_records
from tests.support.flinkdist import FLINK_VERSIONS

pytestmark = pytest.mark.differential


@pytest.fixture(scope="module", params=FLINK_VERSIONS)
def answers(request: pytest.FixtureRequest) -> tuple[str, dict[str, dict[str, Any]]]:
    version: str = request.param
    records = vector_records() + scenario_records()
    results = flinkref.run_reference(version, records, verify=True)
    return version, {str(result["id"]): result for result in results}


def _check_ok(expect: TmOk, result: dict[str, Any]) -> None:
    assert result["valid"] is True, result["error"]
    fields = {
        "frameworkHeap": expect.fh,
        "frameworkOffHeap": expect.fo,
        "taskHeap": expect.th,
        "taskOffHeap": expect.to,
        "networkMemory": expect.net,
        "managedMemory": expect.man,
        "jvmMetaspace": expect.meta,
        "jvmOverhead": expect.ovh,
        "totalFlinkMemory": expect.flink,
        "totalProcessMemory": expect.process,
        "jvmHeap": expect.heap,
        "jvmDirectMemory": expect.direct,
        "cpuCores": expect.cpu,
        "slots": expect.slots,
    }
    assert {key: result[key] for key in fields} == fields
    assert result["externalResources"] == dict(expect.ext)
    assert result["jvmArgs"] == (
        f"-Xmx{expect.heap} -Xms{expect.heap} -XX:MaxDirectMemorySize={expect.direct} "
        f"-XX:MaxMetaspaceSize={expect.meta}"
    )
    if expect.pod is not None:
        assert result["podMemoryMiB"] == expect.pod
        assert result["k8s"]["memory"] == f"{expect.pod}Mi"


@pytest.mark.parametrize("vector", VECTORS, ids=[vector.id for vector in VECTORS])
def test_vector(answers: tuple[str, dict[str, dict[str, Any]]], vector: Any) -> None:
    version, by_id = answers
    result = by_id[vector.record()["id"]]
    expect = vector.expected(version)
    if isinstance(expect, TmFails):
        assert result["valid"] is False
        assert result["exceptions"][0] == expect.java, result["error"]
        assert expect.text in result["error"]
    else:
        _check_ok(expect, result)


def test_flinks_own_test_scenarios(answers: tuple[str, dict[str, dict[str, Any]]]) -> None:
    """Standalone, as Flink's tests resolve them: the stated outcome and the pinned sizes."""
    version, by_id = answers
    checked = 0
    for scenario in SCENARIOS:
        if not version.startswith(scenario.versions):
            continue
        result = by_id[scenario.record("standalone")["id"]]
        assert result["valid"] is scenario.valid, (scenario.id, result["error"])
        for field, value in scenario.pins.items():
            assert result[field] == value, (scenario.id, field)
        checked += 1
    assert checked > 100


def test_launcher_and_real_pod_agree_with_the_harness(answers: tuple[str, dict[str, dict[str, Any]]]) -> None:
    _, by_id = answers
    pods = 0
    for record in vector_records() + scenario_records():
        result = by_id[record["id"]]
        if record["mode"] == "standalone":
            assert result["launcherAgrees"] is True, record["id"]
        elif result["valid"]:
            pod = result["k8s"]
            assert pod["memory"] == f"{result['podMemoryMiB']}Mi"
            assert pod["jvmMemOpts"] == result["jvmArgs"]
            assert f" {result['dynamicConfigs']}" in pod["args"]
            assert float(pod["cpu"]) == result["cpuCores"]
            pods += 1
    assert pods > 50
