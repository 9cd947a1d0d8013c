"""The reference harness alone: real Flink, driven by FlinkMemHarness, reproduces the verified vectors.

These expectations were established by running Flink's own BashJavaUtils and Kubernetes client
classes (see vectors.py), so a failure here means the harness does not drive Flink the way the
start scripts and the native Kubernetes client do.
"""

from __future__ import annotations

import json
import struct
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from tests.differential import flinkref
from tests.differential.vectors import FAILURE_TEXT, VECTORS, Fails, Ok, SpecVector, spec_vectors
from tests.support.flinkdist import FLINK_VERSIONS

pytestmark = pytest.mark.differential

MIN_HEAP = 128 << 20
ICE = "org.apache.flink.configuration.IllegalConfigurationException: "
LEGACY_PREFIX = ICE + "JobManager memory configuration failed: "

NOT_CONFIGURATION_EXCEPTIONS = {"E11", "E12", "E13", "INT"}


@pytest.fixture(scope="module", params=FLINK_VERSIONS)
def answers(request: pytest.FixtureRequest) -> tuple[str, dict[str, dict[str, Any]]]:
    """All vectors through one harness JVM per version, by record id."""
    version: str = request.param
    records = spec_vectors()
    results = flinkref.run_reference(version, records)
    return version, {str(result["id"]): result for result in results}


def _float_option(text: str) -> Fraction:
    """A Float option's value widened to double, as Flink multiplies with it (simple decimals only)."""
    as_float = struct.unpack(">f", struct.pack(">f", float(text)))[0]
    return Fraction(Decimal(repr(as_float)))


def _check_ok(expect: Ok, result: dict[str, Any], version: str) -> None:
    assert result["valid"] is True, result["error"]
    assert result["error"] is None
    heap, off, meta, overhead = (result[key] for key in ("jvmHeap", "offHeap", "jvmMetaspace", "jvmOverhead"))
    for field, expected in (
        ("jvmHeap", expect.heap),
        ("offHeap", expect.off_heap),
        ("jvmMetaspace", expect.metaspace),
        ("jvmOverhead", expect.overhead),
        ("totalFlinkMemory", expect.total_flink),
        ("totalProcessMemory", expect.total_process),
    ):
        if expected is not None:
            assert result[field] == expected, field
    # The spec's invariants and both output strings, rebuilt from the four components.
    assert result["totalFlinkMemory"] == heap + off
    assert result["totalProcessMemory"] == heap + off + meta + overhead
    direct = f" -XX:MaxDirectMemorySize={off}" if expect.direct_limit else ""
    assert result["jvmArgs"] == f"-Xmx{heap} -Xms{heap}{direct} -XX:MaxMetaspaceSize={meta}"
    assert result["jvmDirectMemory"] == (off if expect.direct_limit else None)
    assert result["dynamicConfigs"] == (
        f"-D jobmanager.memory.off-heap.size={off}b -D jobmanager.memory.jvm-overhead.min={overhead}b "
        f"-D jobmanager.memory.jvm-metaspace.size={meta}b -D jobmanager.memory.heap.size={heap}b "
        f"-D jobmanager.memory.jvm-overhead.max={overhead}b"
    )
    assert result["heapBelowMinimum"] is (heap < MIN_HEAP)
    if expect.heap_warning is not None:
        assert result["heapBelowMinimum"] is expect.heap_warning
    assert bool(result["warnings"]) is result["heapBelowMinimum"]
    if expect.overhead_between is not None:
        low, high = expect.overhead_between
        assert low <= overhead <= high
    if expect.overhead_fraction_of_total is not None:
        fraction = _float_option(expect.overhead_fraction_of_total)
        assert overhead == int(result["totalProcessMemory"] * fraction)


def _check_fails(expect: Fails, result: dict[str, Any], version: str) -> None:
    assert result["valid"] is False
    assert "inputError" not in result
    error: str = result["error"]
    assert FAILURE_TEXT[expect.rule] in error, error
    for field in ("totalProcessMemory", "jvmHeap", "jvmArgs", "dynamicConfigs", "jvmDirectMemory"):
        assert result[field] is None
    if expect.rule in NOT_CONFIGURATION_EXCEPTIONS:
        assert not error.startswith(ICE), error
    elif version.startswith("1."):
        assert error.startswith(LEGACY_PREFIX), error
    else:
        assert error.startswith(ICE) and not error.startswith(LEGACY_PREFIX), error


def _vector_ids() -> list[str]:
    return [vector.id for vector in VECTORS]


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_ids())
def test_vector(vector: SpecVector, answers: tuple[str, dict[str, dict[str, Any]]]) -> None:
    version, by_id = answers
    expect = vector.expected(version)
    if expect is None:
        pytest.skip(f"no verified outcome for Flink {version}")
    result = by_id[vector.id]
    context = json.dumps({"vector": vector.record(), "flink": version, "result": result}, indent=1)
    try:
        if isinstance(expect, Ok):
            _check_ok(expect, result, version)
        else:
            _check_fails(expect, result, version)
        kubernetes = vector.expected_k8s(version)
        if kubernetes is not None:
            assert result["k8s"] is not None
            assert result["k8s"]["k8sMemoryMiB"] == kubernetes.request
            assert result["k8s"]["k8sLimitMiB"] == kubernetes.limit
            if kubernetes.limit is None:
                assert "should be greater or equal to 1." in result["k8s"]["error"]
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{context}") from None


def test_native_twins_match_standalone_without_legacy_keys(
    answers: tuple[str, dict[str, dict[str, Any]]],
) -> None:
    """Without the legacy heap keys the two modes are the same resolution, on both lines."""
    _, by_id = answers
    compared = 0
    for vector in VECTORS:
        if vector.mode != "standalone" or any(key.startswith("jobmanager.heap.") for key in vector.config):
            continue
        standalone, native = by_id[vector.id], by_id[f"{vector.id}@native"]
        for field in ("valid", "jvmArgs", "dynamicConfigs", "totalProcessMemory", "error"):
            assert standalone[field] == native[field], (vector.id, field)
        assert standalone["k8s"] is None
        compared += 1
    assert compared > 100


def test_malformed_lines_and_foreign_versions() -> None:
    """Input problems are answered in place, one line per input line, without stopping the batch."""
    lines = (
        b'{"id": 1, "config": {"jobmanager.memory.process.size": "1600m"}}\n'
        b"not json\n"
        b"\n"
        b'{"id": {"nested": [1, 2.5]}, "config": {"jobmanager.memory.process.size": 1600}}\n'
        b'{"id": 4, "config": {}, "flinkVersion": "0.9"}\n'
        b'{"id": 5, "config": {}, "mode": "yarn"}\n'
        b'{"id": 6, "config": {"jobmanager.memory.process.size": "1600m"}, "flinkVersion": "v2_x"}\n'
    )
    output = flinkref.run_reference_lines("2.3.0", lines).decode().splitlines()
    results = [json.loads(line) for line in output]
    assert [result["id"] for result in results] == [1, None, {"nested": [1, 2.5]}, 4, 5, 6]
    assert [result["valid"] for result in results] == [True, False, False, False, False, True]
    assert [result.get("inputError", False) for result in results] == [False, True, True, True, True, False]
