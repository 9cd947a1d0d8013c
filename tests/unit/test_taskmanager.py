"""The TaskManager model against the verified vectors of the TaskManager notes (section 12).

Every V- and E-row (tests/differential/tmvectors.py, which the reference harness also checks
against real Flink) was produced by the real Flink 2.3.0 and 1.20.3 classes; where the 1.x column
differs it is given separately. Expected JVM flags and dynamic configs are assembled from the row's
numbers in the format of section 9 (four flags; thirteen `-D` pairs in Flink's HashMap order).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

import pytest

from flinkmem.engine import (
    DeploymentMode,
    FlinkMemError,
    FlinkVersion,
    InvalidOptionValue,
    MemoryConflict,
    MemoryOverflow,
    Rule,
    TaskManagerMemory,
    resolve_taskmanager,
)
from flinkmem.engine.taskmanager.options import (
    LEGACY_HEAP_ENV,
    MIN_TASK_HEAP,
    TASKMANAGER_MEMORY_KEYS,
    TASKMANAGER_OPTIONS,
    TOTAL_PROCESS,
)
from tests.differential.tmvectors import VECTORS, TmFails, TmOk, TmVector

MIB = 1 << 20
GIB = 1 << 30
V2 = FlinkVersion(2, 3)
V1 = FlinkVersion(1, 20)
NATIVE = DeploymentMode.NATIVE
STANDALONE = DeploymentMode.STANDALONE

T = "taskmanager.memory."
P, F = T + "process.size", T + "flink.size"
TH, TO, FH, FO = (
    T + "task.heap.size",
    T + "task.off-heap.size",
    T + "framework.heap.size",
    T + "framework.off-heap.size",
)
MAN, MF = T + "managed.size", T + "managed.fraction"
NMIN, NMAX, NF = T + "network.min", T + "network.max", T + "network.fraction"
META, OMIN, OMAX, OF = (
    T + "jvm-metaspace.size",
    T + "jvm-overhead.min",
    T + "jvm-overhead.max",
    T + "jvm-overhead.fraction",
)
SLOTS, CPU, K8S_CPU = "taskmanager.numberOfTaskSlots", "taskmanager.cpu.cores", "kubernetes.taskmanager.cpu.amount"
LEGACY, LEGACY_MB, BUFFERS = "taskmanager.heap.size", "taskmanager.heap.mb", "taskmanager.network.numberOfBuffers"
SEGMENT = T + "segment-size"


_ERRORS: dict[str, type[FlinkMemError]] = {
    Rule.INVALID_VALUE.value: InvalidOptionValue,
    Rule.LEGACY_HEAP_INVALID.value: InvalidOptionValue,
    Rule.SIZE_OVERFLOW.value: MemoryOverflow,
}


def _dynamic_configs(ok: TmOk) -> str:
    """Section 9.2's fixed order (no extended resources)."""
    return (
        f"-D taskmanager.memory.network.min={ok.net}b -D taskmanager.cpu.cores={ok.cpu!r} "
        f"-D taskmanager.memory.task.off-heap.size={ok.to}b -D taskmanager.memory.jvm-metaspace.size={ok.meta}b "
        f"-D external-resources=none -D taskmanager.memory.jvm-overhead.min={ok.ovh}b "
        f"-D taskmanager.memory.framework.off-heap.size={ok.fo}b -D taskmanager.memory.network.max={ok.net}b "
        f"-D taskmanager.memory.framework.heap.size={ok.fh}b -D taskmanager.memory.managed.size={ok.man}b "
        f"-D taskmanager.memory.task.heap.size={ok.th}b -D taskmanager.numberOfTaskSlots={ok.slots} "
        f"-D taskmanager.memory.jvm-overhead.max={ok.ovh}b"
    )


def _check(expected: TmOk | TmFails, config: Mapping[str, str], version: FlinkVersion, mode: DeploymentMode) -> None:
    if isinstance(expected, TmFails):
        with pytest.raises(_ERRORS.get(expected.rule, MemoryConflict)) as caught:
            resolve_taskmanager(config, version, mode)
        assert caught.value.rule is Rule(expected.rule)
        return
    m = resolve_taskmanager(config, version, mode)
    got = (m.framework_heap, m.framework_off_heap, m.task_heap, m.task_off_heap, m.network, m.managed)
    assert got == (expected.fh, expected.fo, expected.th, expected.to, expected.net, expected.man)
    assert (m.metaspace, m.overhead) == (expected.meta, expected.ovh)
    assert (m.total_flink, m.total_process) == (expected.flink, expected.process)
    assert (m.cpu_cores, m.slots, m.external_resources) == (expected.cpu, expected.slots, expected.ext)
    assert (m.jvm_heap, m.jvm_direct_memory) == (expected.heap, expected.direct)
    assert m.jvm_args == (
        f"-Xmx{expected.heap} -Xms{expected.heap} -XX:MaxDirectMemorySize={expected.direct} "
        f"-XX:MaxMetaspaceSize={expected.meta}"
    )
    if expected.pod is not None:
        assert m.flink_pod_memory_mib == expected.pod
    if not expected.ext:
        assert m.dynamic_configs == _dynamic_configs(expected)


@pytest.mark.parametrize("vector", VECTORS, ids=[vector.id for vector in VECTORS])
@pytest.mark.parametrize("version", ["2.3", "1.20"])
def test_vectors(vector: TmVector, version: str) -> None:
    mode = DeploymentMode(vector.mode)
    _check(vector.expected(version), vector.config, FlinkVersion.parse(version), mode)


def test_v01_dynamic_configs_verbatim() -> None:
    memory = resolve_taskmanager({P: "1728m"}, V2, STANDALONE)
    assert (
        memory.jvm_args
        == "-Xmx536870902 -Xms536870902 -XX:MaxDirectMemorySize=268435458 -XX:MaxMetaspaceSize=268435456"
    )
    assert memory.dynamic_configs == (
        "-D taskmanager.memory.network.min=134217730b -D taskmanager.cpu.cores=1.0 "
        "-D taskmanager.memory.task.off-heap.size=0b -D taskmanager.memory.jvm-metaspace.size=268435456b "
        "-D external-resources=none -D taskmanager.memory.jvm-overhead.min=201326592b "
        "-D taskmanager.memory.framework.off-heap.size=134217728b -D taskmanager.memory.network.max=134217730b "
        "-D taskmanager.memory.framework.heap.size=134217728b -D taskmanager.memory.managed.size=536870920b "
        "-D taskmanager.memory.task.heap.size=402653174b -D taskmanager.numberOfTaskSlots=1 "
        "-D taskmanager.memory.jvm-overhead.max=201326592b"
    )
    assert list(memory.dynamic_configs_map) == [pair.split("=")[0] for pair in memory.dynamic_configs[3:].split(" -D ")]


def test_v23_one_gpu_lands_at_the_end() -> None:
    memory = resolve_taskmanager(
        {P: "4g", "external-resources": "gpu", "external-resource.gpu.amount": "1"}, V2, STANDALONE
    )
    pairs = memory.dynamic_configs.split(" -D ")
    assert pairs[4] == 'external-resources="gpu"'
    assert memory.dynamic_configs.endswith(
        "-D taskmanager.memory.jvm-overhead.max=429496736b -D external-resource.gpu.amount=1"
    )
    assert memory.external_resources == (("gpu", 1),)


def test_two_extended_resources_in_hashmap_order() -> None:
    config = {
        P: "4g",
        "external-resources": "gpu;fpga",
        "external-resource.gpu.amount": "2",
        "external-resource.fpga.amount": "1",
    }
    memory = resolve_taskmanager(config, V2, STANDALONE)
    keys = list(memory.dynamic_configs_map)
    assert memory.dynamic_configs_map["external-resources"] == '"fpga;gpu"'
    assert keys.index("external-resource.fpga.amount") == keys.index("taskmanager.memory.network.max") + 1
    assert keys[keys.index("external-resource.fpga.amount") + 1] == "taskmanager.memory.framework.heap.size"
    assert keys[-1] == "external-resource.gpu.amount"


def test_error_precedence_follows_flinks_read_order() -> None:
    # Section 10: the managed fraction (5.4 step 3.1) is read before the network range (3.2).
    with pytest.raises(MemoryConflict) as caught:
        resolve_taskmanager({P: "4g", NMIN: "abc", MF: "2"}, V2, STANDALONE)
    assert caught.value.rule is Rule.MANAGED_FRACTION_OUT_OF_RANGE


def test_deprecated_keys_are_read_and_named() -> None:
    memory = resolve_taskmanager({P: "4g", "taskmanager.network.memory.fraction": "0.2"}, V2, STANDALONE)
    # V02's Total Flink Memory times 0.2f, whose Java text is 0.20000000298023224 (section 3.4).
    assert memory.network == int(3597035104 * Fraction(Decimal("0.20000000298023224")))
    with pytest.raises(InvalidOptionValue) as caught:
        resolve_taskmanager({P: "4g", "taskmanager.network.memory.max": "lots"}, V2, STANDALONE)
    assert "taskmanager.network.memory.max" in caught.value.message


def test_main_key_wins_over_deprecated_key() -> None:
    config = {P: "4g", MAN: "1g", "taskmanager.memory.size": "not a size"}
    assert resolve_taskmanager(config, V2, STANDALONE).managed == GIB


def test_network_capped_by_min_warns_with_the_numbers() -> None:
    memory = resolve_taskmanager({P: "1g"}, V2, STANDALONE)
    (notice,) = [n for n in memory.warnings if n.code == "network-capped"]
    assert "taskmanager.memory.network.min" in notice.message and "64 MiB" in notice.message
    assert len(notice.message) <= 110


def test_network_capped_by_max_warns() -> None:
    memory = resolve_taskmanager({P: "8g", NMAX: "64m"}, V2, STANDALONE)
    (notice,) = [n for n in memory.warnings if n.code == "network-capped"]
    assert "taskmanager.memory.network.max" in notice.message


def test_network_remainder_is_not_capped_and_not_warned() -> None:
    memory = resolve_taskmanager({P: "4g", TH: "1g"}, V2, STANDALONE)
    assert not [n for n in memory.notices if n.code == "network-capped"]


@pytest.mark.parametrize(
    ("config", "warns"), [({P: "1g"}, True), ({P: "1728m"}, False), ({TH: "128m", MAN: "0"}, False)]
)
def test_task_heap_below_minimum(config: dict[str, str], warns: bool) -> None:
    memory = resolve_taskmanager(config, V2, STANDALONE)
    assert any(n.code == "task-heap-below-minimum" for n in memory.warnings) is warns
    assert (memory.task_heap < MIN_TASK_HEAP) is warns


def test_bare_number_sizes_are_flagged() -> None:
    memory = resolve_taskmanager({P: "4294967296", "taskmanager.network.memory.min": "67108864"}, V2, STANDALONE)
    flagged = [n.message for n in memory.warnings if n.code == "bare-number-size"]
    assert len(flagged) == 2 and all("bytes" in text for text in flagged)


@pytest.mark.parametrize("key", [LEGACY, LEGACY_MB, BUFFERS])
def test_2x_ignores_legacy_keys_with_a_warning(key: str) -> None:
    memory = resolve_taskmanager({P: "4g", key: "1024"}, V2, STANDALONE)
    assert any(n.code == "legacy-key-ignored" and key in n.message for n in memory.warnings)
    assert memory.total_process == 4 * GIB


def test_2x_ignores_the_legacy_environment_variable() -> None:
    memory = resolve_taskmanager({P: "4g"}, V2, STANDALONE, legacy_heap_env="not a size")
    assert any(n.code == "legacy-key-ignored" and LEGACY_HEAP_ENV in n.message for n in memory.warnings)


def test_1x_legacy_environment_variable_comes_first() -> None:
    memory = resolve_taskmanager({LEGACY: "2g"}, V1, STANDALONE, legacy_heap_env="1g")
    assert memory.total_flink == GIB
    assert any(n.code == "legacy-heap-mapped" and LEGACY_HEAP_ENV in n.message for n in memory.warnings)
    with pytest.raises(InvalidOptionValue) as caught:
        resolve_taskmanager({}, V1, STANDALONE, legacy_heap_env="lots")
    assert caught.value.rule is Rule.LEGACY_HEAP_INVALID


def test_1x_buffers_ignored_next_to_network_keys_is_noted() -> None:
    memory = resolve_taskmanager({P: "4g", BUFFERS: "4096", NF: "0.1"}, V1, STANDALONE)
    assert memory.network == 359703515
    assert any(n.code == "legacy-key-ignored" and BUFFERS in n.message for n in memory.warnings)


def test_1x_buffer_count_must_match_a_network_remainder() -> None:
    with pytest.raises(MemoryConflict) as caught:
        resolve_taskmanager({F: "1280m", TH: "100m", BUFFERS: "4096"}, V1, STANDALONE)
    assert caught.value.rule is Rule.NETWORK_BUFFERS_MISMATCH
    # 4096 x 32 KiB = 128 MiB; managed is 1280 MiB x 0.4f = 536870920 (section 13): the task heap
    # that leaves exactly 128 MiB of network memory works.
    task_heap = 1280 * MIB - 2 * 128 * MIB - 536870920 - 128 * MIB
    fixed = resolve_taskmanager({F: "1280m", TH: f"{task_heap}b", BUFFERS: "4096"}, V1, STANDALONE)
    assert fixed.network == 128 * MIB


def test_native_pod_differs_from_configured_process_size_is_warned() -> None:
    memory = resolve_taskmanager({F: "2g", P: "2600m"}, V2, NATIVE)
    assert memory.flink_pod_memory_mib == 2560
    assert any(n.code == "pod-process-size-differs" for n in memory.warnings)
    assert not any(n.code == "pod-process-size-differs" for n in resolve_taskmanager({P: "4g"}, V2, NATIVE).warnings)


def test_native_checks_the_configured_remainder_overhead_first() -> None:
    # The client resolves with process.size (P3) even though the pod would ignore it.
    with pytest.raises(MemoryConflict) as caught:
        resolve_taskmanager({F: "1280m", P: "1536m"}, V2, NATIVE)
    assert caught.value.rule is Rule.DERIVED_OVERHEAD_OUT_OF_RANGE


def test_native_cpu_fallback_and_its_deprecated_key() -> None:
    assert resolve_taskmanager({P: "4g", "kubernetes.taskmanager.cpu": "3"}, V2, NATIVE).cpu_cores == 3.0
    assert resolve_taskmanager({P: "4g", "kubernetes.taskmanager.cpu": "3"}, V2, STANDALONE).cpu_cores == 1.0
    assert resolve_taskmanager({P: "4g", K8S_CPU: "-1", SLOTS: "3"}, V2, NATIVE).cpu_cores == 3.0


def test_native_refuses_slots_the_client_accepts_without_cpu() -> None:
    with pytest.raises(MemoryConflict) as caught:
        resolve_taskmanager({P: "4g", SLOTS: "0", K8S_CPU: "2"}, V2, NATIVE)
    assert caught.value.rule is Rule.CPU_CORES_NOT_POSITIVE  # the client's CPU is the slot count


def test_cpu_truncates_to_eight_decimals() -> None:
    memory = resolve_taskmanager({P: "4g", CPU: "0.123456789"}, V2, STANDALONE)
    assert memory.cpu_cores == 0.12345678
    assert "-D taskmanager.cpu.cores=0.12345678 " in memory.dynamic_configs
    assert (
        "taskmanager.cpu.cores=1.0E-4" in resolve_taskmanager({P: "4g", CPU: "0.0001"}, V2, STANDALONE).dynamic_configs
    )


def test_refusals_carry_a_fix_with_a_number() -> None:
    with pytest.raises(MemoryConflict) as caught:
        resolve_taskmanager({P: "600m"}, V2, STANDALONE)
    # 982m leaves 534 MiB of Flink memory: 256 MiB framework, 213.6 MiB managed, 64 MiB network.
    assert "at least 982 MiB" in caught.value.fix
    resolve_taskmanager({P: "982m"}, V2, STANDALONE)
    with pytest.raises(MemoryConflict):
        resolve_taskmanager({P: "981m"}, V2, STANDALONE)


def test_the_suggested_total_flink_fits() -> None:
    with pytest.raises(MemoryConflict) as caught:
        resolve_taskmanager({F: "2g", TH: "2g"}, V2, STANDALONE)
    match = re.search(r"at least [^(]*\((\d+) bytes\)", caught.value.fix)
    assert match is not None, caught.value.fix
    size = int(match.group(1))
    assert size % MIB == 0
    resolve_taskmanager({F: str(size), TH: "2g"}, V2, STANDALONE)
    with pytest.raises(MemoryConflict):
        resolve_taskmanager({F: str(size - MIB), TH: "2g"}, V2, STANDALONE)


def test_managed_zero_with_rocksdb_warns() -> None:
    config = {P: "4g", MF: "0", "state.backend.type": "rocksdb"}
    assert any(n.code == "managed-zero-with-rocksdb" for n in resolve_taskmanager(config, V2, NATIVE).warnings)
    config["state.backend.rocksdb.memory.managed"] = "false"
    assert not any(n.code == "managed-zero-with-rocksdb" for n in resolve_taskmanager(config, V2, NATIVE).warnings)


def test_standalone_zero_slots_is_valid_but_warned() -> None:
    memory = resolve_taskmanager({P: "4g", SLOTS: "0", CPU: "1"}, V2, STANDALONE)
    assert any(n.code == "slots-not-positive" for n in memory.warnings)


def test_warning_messages_stay_short() -> None:
    config = {P: "1g", LEGACY: "1g", BUFFERS: "10", "state.backend.type": "rocksdb", MF: "0", F: "600m"}
    for version in (V1, V2):
        memory = resolve_taskmanager({k: v for k, v in config.items() if k != F}, version, NATIVE)
        for notice in memory.warnings:
            assert len(notice.message) <= 120, notice.message


def test_to_dict_uses_the_batch_field_names() -> None:
    memory = resolve_taskmanager({P: "4g"}, V2, NATIVE)
    data = memory.to_dict()
    assert data["totalProcessMemory"] == 4 * GIB
    assert data["networkMemory"] == 359703515 and data["managedMemory"] == 1438814063
    assert data["jvmHeap"] == memory.jvm_heap and data["jvmDirectMemory"] == memory.jvm_direct_memory
    assert data["dynamicConfigs"] == memory.dynamic_configs and data["mode"] == "native"


def test_result_is_immutable() -> None:
    memory = resolve_taskmanager({P: "4g"}, V2, NATIVE)
    with pytest.raises(AttributeError):
        memory.task_heap = 0  # type: ignore[misc]
    assert isinstance(memory, TaskManagerMemory)


def test_options_descriptor() -> None:
    assert TASKMANAGER_OPTIONS.role == "TaskManager"
    assert TASKMANAGER_OPTIONS.total_process is TOTAL_PROCESS
    assert len(set(TASKMANAGER_MEMORY_KEYS)) == 15
