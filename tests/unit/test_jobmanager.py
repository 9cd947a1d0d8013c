"""The JobManager model against the verified vectors of the memory-model notes.

The C-series (Appendix B) ran through Flink 2.3.0 and 1.20.3's BashJavaUtils with identical
results on both lines, the L-series covers the 1.x legacy heap keys, and section 12 restates
Flink's own unit tests. Each configuration is written here as the map Flink reads: `-D` values
and quoted YAML are strings, unquoted YAML scalars keep their YAML 1.2 Core type (int, float,
bool). Expected JVM flags and dynamic configs are assembled from the vector's numbers in the
format of section 9 (flags: `-Xmx -Xms [-XX:MaxDirectMemorySize] -XX:MaxMetaspaceSize`; five `-D`
pairs with a `b` suffix in Flink's fixed HashMap order).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import pytest

from flinkmem.engine import (
    DeploymentMode,
    FlinkMemError,
    FlinkVersion,
    InvalidOptionValue,
    JobManagerMemory,
    MemoryConflict,
    MemoryOverflow,
    RawValue,
    Rule,
    resolve_jobmanager,
)
from flinkmem.engine.jobmanager.options import JOBMANAGER_MEMORY_KEYS, JOBMANAGER_OPTIONS, MIN_HEAP

MIB = 1 << 20
GIB = 1 << 30
TIB = 1 << 40

P = "jobmanager.memory.process.size"
F = "jobmanager.memory.flink.size"
H = "jobmanager.memory.heap.size"
OFF = "jobmanager.memory.off-heap.size"
DL = "jobmanager.memory.enable-jvm-direct-memory-limit"
META = "jobmanager.memory.jvm-metaspace.size"
MIN = "jobmanager.memory.jvm-overhead.min"
MAX = "jobmanager.memory.jvm-overhead.max"
FR = "jobmanager.memory.jvm-overhead.fraction"
LEGACY = "jobmanager.heap.size"
LEGACY_MB = "jobmanager.heap.mb"

V2 = FlinkVersion(2, 3)
V1 = FlinkVersion(1, 20)
NATIVE = DeploymentMode.NATIVE
STANDALONE = DeploymentMode.STANDALONE

D_OFF = 134217728
D_META = 268435456


@dataclass(frozen=True)
class Ok:
    heap: int
    overhead: int
    meta: int = D_META
    off_heap: int = D_OFF
    direct: bool = False

    @property
    def total_flink(self) -> int:
        return self.heap + self.off_heap

    @property
    def total_process(self) -> int:
        return self.heap + self.off_heap + self.meta + self.overhead


@dataclass(frozen=True)
class Fails:
    error: type[FlinkMemError]
    rule: Rule
    key: str | None = None  # an option the error must name


E1 = Fails(MemoryConflict, Rule.NO_SIZING_OPTION)
E2 = Fails(MemoryConflict, Rule.METASPACE_AND_OVERHEAD_EXCEED_PROCESS)
E3 = Fails(MemoryConflict, Rule.FLINK_NOT_ABOVE_OFF_HEAP)
E4 = Fails(MemoryConflict, Rule.HEAP_PLUS_OFF_HEAP_MISMATCH)
E5 = Fails(MemoryConflict, Rule.HEAP_EXCEEDS_FLINK)
E6 = Fails(MemoryConflict, Rule.OVERHEAD_RANGE_INCONSISTENT)
E7 = Fails(MemoryConflict, Rule.DERIVED_OVERHEAD_OUT_OF_RANGE)
E9 = Fails(MemoryConflict, Rule.PROCESS_BELOW_FLINK_PLUS_METASPACE)
E10 = Fails(InvalidOptionValue, Rule.INVALID_VALUE, P)
E11 = Fails(InvalidOptionValue, Rule.INVALID_VALUE, FR)
E12 = Fails(InvalidOptionValue, Rule.INVALID_VALUE, DL)
E13 = Fails(MemoryOverflow, Rule.SIZE_OVERFLOW)
E15 = Fails(InvalidOptionValue, Rule.LEGACY_HEAP_INVALID)
E16 = Fails(InvalidOptionValue, Rule.LEGACY_HEAP_INVALID)

C01 = Ok(1073741824, 201326592)
C02 = Ok(1530082096, 214748368)
C03 = Ok(3462817376, 429496736)
C04 = Ok(469762048, 201326592)

Expected = Ok | Fails
Vector = tuple[str, dict[str, RawValue], Expected]

# Appendix B, C-series: the same result on 2.3.0 and 1.20.3 (the legacy cases C54/C55 and the
# file-level cases C56/C57/C67 are tested separately).
C_VECTORS: list[Vector] = [
    ("C01", {P: "1600m"}, C01),
    ("C02", {P: "2g"}, C02),
    ("C03", {P: "4096m"}, C03),
    ("C04", {P: "1g"}, C04),
    ("C05", {P: "3000m"}, Ok(2428502012, 314572804)),
    ("C06", {P: "20g"}, Ok(19998441472, 1073741824)),
    ("C07", {F: "1g"}, Ok(939524096, 201326592)),
    ("C08", {F: "2g"}, Ok(2013265920, 268435460)),
    ("C09", {H: "1g"}, Ok(1073741824, 201326592)),
    ("C10", {H: "1g", F: "1280m"}, Ok(1073741824, 201326592, off_heap=268435456)),
    ("C11", {H: "512m", OFF: "64m"}, Ok(536870912, 201326592, off_heap=67108864)),
    ("C12", {H: "1g", P: "1600m"}, Ok(1073741824, 201326592)),
    ("C13", {F: "1g", P: "1600m"}, Ok(939524096, 335544320)),
    ("C14", {P: "2g", FR: 0.25}, Ok(1207959552, 536870912)),
    ("C15", {P: "2g", FR: 0, MIN: "0m"}, Ok(1744830464, 0)),
    ("C16", {P: "2g", MIN: "300m", MAX: "300m"}, Ok(1430257664, 314572800)),
    ("C17", {P: "1600m", DL: True}, Ok(1073741824, 201326592, direct=True)),
    ("C18", {P: "1600m", DL: "TRUE"}, Ok(1073741824, 201326592, direct=True)),
    ("C19", {P: "1600m", META: "128m"}, Ok(1207959552, 201326592, meta=134217728)),
    ("C20", {P: "  1600 MB  "}, C01),
    ("C21", {P: 1677721600}, C01),
    ("C22", {P: "2g"}, C02),  # -D 2g over a file's 1600m: the map holds the -D value
    ("C23", {P: "1600m", FR: "1e-1"}, C01),
    ("C24", {P: "3000m", FR: "0.3f"}, Ok(1799356379, 943718437)),
    ("C25", {H: "50m"}, Ok(52428800, 201326592)),
    ("C26", {P: "1601m"}, Ok(1074790400, 201326592)),
    ("C27", {P: "2500001k"}, Ok(1901347734, 256000106)),
    ("C28", {F: "1g", FR: 0.5}, Ok(939524096, 1073741824)),
    ("C29", {P: "100t"}, Ok(109949686382592, 1073741824)),
    ("C30", {P: "3000m", FR: "-0.0"}, Ok(2541748224, 201326592)),
    ("C31", {}, E1),
    ("C32", {P: "100m"}, E2),
    ("C33", {P: "500m"}, E3),
    ("C34", {P: "576m"}, E3),
    ("C35", {P: "577m"}, Ok(1048576, 201326592)),
    ("C36", {H: "100m", F: "199m", OFF: "100m"}, E4),
    ("C37", {H: "150m", F: "100m"}, E5),
    ("C38", {P: "1600m", MIN: "200m", MAX: "50m"}, E6),
    ("C39", {P: "1600m", FR: 1.0}, E6),
    ("C40", {P: "1600m", FR: -0.1}, E6),
    ("C41", {P: "1000m", F: "800m", META: "100m", MIN: "150m", MAX: "200m", FR: 0.5}, E7),
    ("C42", {P: "699m", F: "500m", META: "100m", MIN: "100m", MAX: "100m"}, E7),
    ("C43", {F: "1g", P: "1200m"}, E9),
    ("C44", {P: "1.5g"}, E10),
    ("C45", {P: "abc"}, E10),
    ("C46", {P: "-1g"}, E10),
    ("C47", {P: "1600mib"}, E10),
    ("C48", {P: "99999999999t"}, E10),
    ("C49", {P: "1600m", DL: "yes"}, E12),
    ("C50", {P: "1600m", FR: "abc"}, E11),
    ("C51", {H: "1g", P: "1300m"}, E9),
    ("C52", {F: "100m"}, E3),
    ("C53", {F: "128m"}, E3),
    ("C58", {F: "1000t", FR: 0.9999999}, E13),
    ("C59", {H: "8388607t"}, Ok(9223370937343148032, 1073741824)),
    ("C60", {P: "8388607t"}, Ok(9223370935866753024, 1073741824)),
    ("C61", {H: "1g", P: "1600m", FR: 0.1}, Ok(1073741824, 201326592)),
    ("C62", {P: "1600m", OFF: 0}, Ok(1207959552, 201326592, off_heap=0)),
    ("C63", {P: "1600m", META: 0, MAX: 0, MIN: 0}, Ok(1543503872, 0, meta=0)),
    ("C64", {H: "1g", OFF: "100m", F: "1124m"}, Ok(1073741824, 201326592, off_heap=104857600)),
    ("C65", {P: "1600m", FR: math.inf}, E11),
    ("C66", {P: "1600m", FR: "NaN"}, E6),
    ("C68", {P: 0x100000000}, C03),
    ("C69", {P: "1600m", DL: True}, Ok(1073741824, 201326592, direct=True)),
    ("C70", {P: "1600m", DL: 1}, E12),
    ("C71", {P: "1600m", FR: "0x1p-3"}, Ok(1065353216, 209715200)),
    ("C72", {P: "1600m", FR: " 0.2 "}, Ok(939524091, 335544325)),
    ("C73", {P: 0}, E2),
    ("C74", {H: 0}, Ok(0, 201326592)),
    ("C75", {P: "1600m", FR: 0.1}, C01),
    ("C76", {P: "1600m", FR: 1e-50}, E11),
    ("C77", {P: "1600m", FR: "1e-50"}, C01),
    ("C78", {P: "1600 m"}, C01),
    ("C79", {P: "+1600m"}, E10),
    ("C80", {P: "1600 m b"}, E10),
    # The additional -D checks of Appendix B.
    ("D-empty", {P: ""}, E10),
    ("D-blank", {P: "   "}, E10),
    ("D-split", {P: "1600"}, E2),  # "-D …=1600 m" split into two tokens: 1600 bytes
    ("D-kelvin", {P: "1\u212a"}, E2),  # Kelvin sign: 1 KiB
    ("D-case", {"JobManager.Memory.Process.Size": "2g"}, E1),
]

# Section 5.9 worked examples not already in the C-series.
WORKED_EXAMPLES: list[Vector] = [
    ("flink-2000m", {F: "2000m"}, Ok(1962934272, 262843055)),
]

# Section 12: Flink's JobManagerProcessUtilsTest and ProcessMemoryUtilsTestBase scenarios.
FLINK_UNIT_TESTS: list[Vector] = [
    ("testConfigJvmHeapMemory", {H: "50m"}, Ok(50 * MIB, 192 * MIB)),
    ("testFlinkInternalMemorySizeAddUpFailure", {F: "199m", H: "100m", OFF: "100m"}, E4),
    ("testJvmHeapExceedsTotalFlinkMemoryFailure", {F: "100m", H: "150m"}, E5),
    ("testOffHeapMemoryDerived", {H: "150m", F: "378m"}, Ok(150 * MIB, 192 * MIB, off_heap=228 * MIB)),
    (
        "testDeriveFromRequiredFineGrainedOptions",
        {F: "200m", OFF: "50m", H: "150m"},
        Ok(150 * MIB, 192 * MIB, off_heap=50 * MIB),
    ),
    ("testDerivedTotalProcessGreaterFineGrained", {META: "100m", P: "200m", H: "75m", OFF: "75m"}, E9),
    ("testDerivedTotalProcessGreaterTotalFlink", {META: "100m", P: "200m", F: "150m"}, E9),
    (
        "testConfigJvmOverheadDeriveFromProcessAndFlink",
        {P: "1000m", F: "800m", META: "100m", MIN: "50m", MAX: "200m", FR: "0.5"},
        Ok(672 * MIB, 100 * MIB, meta=100 * MIB),
    ),
    (
        "testConfigJvmOverheadDeriveFromProcessAndFlinkFailure",
        {P: "1000m", F: "800m", META: "100m", MIN: "150m", MAX: "200m", FR: "0.5"},
        E7,
    ),
    ("testConfigTotalProcessMemoryAddUpFailure", {P: "699m", F: "500m", META: "100m", MIN: "100m", MAX: "100m"}, E7),
]

ALL_VECTORS = C_VECTORS + WORKED_EXAMPLES + FLINK_UNIT_TESTS


def jvm_args(ok: Ok) -> str:
    direct = f" -XX:MaxDirectMemorySize={ok.off_heap}" if ok.direct else ""
    return f"-Xmx{ok.heap} -Xms{ok.heap}{direct} -XX:MaxMetaspaceSize={ok.meta}"


def dynamic_configs(ok: Ok) -> str:
    return (
        f"-D jobmanager.memory.off-heap.size={ok.off_heap}b "
        f"-D jobmanager.memory.jvm-overhead.min={ok.overhead}b "
        f"-D jobmanager.memory.jvm-metaspace.size={ok.meta}b "
        f"-D jobmanager.memory.heap.size={ok.heap}b "
        f"-D jobmanager.memory.jvm-overhead.max={ok.overhead}b"
    )


def assert_resolves_to(memory: JobManagerMemory, ok: Ok) -> None:
    assert (memory.heap, memory.off_heap, memory.metaspace, memory.overhead) == (
        ok.heap,
        ok.off_heap,
        ok.meta,
        ok.overhead,
    )
    assert memory.total_flink == ok.total_flink
    assert memory.total_process == ok.total_process
    assert memory.direct_memory_limit_enabled is ok.direct
    assert memory.jvm_direct_memory == (ok.off_heap if ok.direct else None)
    assert memory.jvm_args == jvm_args(ok)
    assert memory.dynamic_configs == dynamic_configs(ok)


def assert_fails(config: dict[str, RawValue], fails: Fails, version: FlinkVersion, mode: DeploymentMode) -> None:
    with pytest.raises(FlinkMemError) as info:
        resolve_jobmanager(config, version, mode)
    error = info.value
    assert type(error) is fails.error, error.message
    assert error.rule is fails.rule, error.message
    if fails.key is not None:
        assert fails.key in error.option_keys
    assert error.problem and error.fix


@pytest.mark.parametrize(("version", "mode"), [(V2, NATIVE), (V2, STANDALONE), (V1, NATIVE), (V1, STANDALONE)])
@pytest.mark.parametrize(("name", "config", "expected"), ALL_VECTORS, ids=[v[0] for v in ALL_VECTORS])
def test_vectors(
    name: str, config: dict[str, RawValue], expected: Expected, version: FlinkVersion, mode: DeploymentMode
) -> None:
    if isinstance(expected, Ok):
        memory = resolve_jobmanager(config, version, mode)
        assert_resolves_to(memory, expected)
        assert memory.version == version
        assert memory.mode is mode
    else:
        assert_fails(config, expected, version, mode)


# ---------------------------------------------------------------------------------------------
# notices (INFO/WARN lines of section 8)


def _notice_codes(memory: JobManagerMemory, level: str | None = None) -> list[str]:
    return [n.code for n in memory.notices if level is None or n.level == level]


@pytest.mark.parametrize(
    ("config", "warns"),
    [
        ({H: "50m"}, True),
        ({P: "577m"}, True),
        ({H: 0}, True),
        ({H: "134217727"}, True),
        ({H: "128m"}, False),
        ({P: "1600m"}, False),
    ],
)
def test_heap_below_recommended_minimum_warns(config: dict[str, RawValue], warns: bool) -> None:
    memory = resolve_jobmanager(config, V2)
    assert ("heap-below-minimum" in _notice_codes(memory, "warning")) is warns
    assert MIN_HEAP == 128 * MIB


def test_off_heap_derived_from_flink_minus_heap_is_noted() -> None:
    memory = resolve_jobmanager({H: "1g", F: "1280m"}, V2)  # C10
    assert "off-heap-derived" in _notice_codes(memory, "info")
    # When the difference equals the default, Flink logs nothing.
    memory = resolve_jobmanager({H: "1g", F: "1152m"}, V2)
    assert memory.off_heap == D_OFF
    assert "off-heap-derived" not in _notice_codes(memory)


def test_fraction_mismatch_with_derived_overhead_is_noted() -> None:
    memory = resolve_jobmanager({H: "1g", P: "1600m", FR: 0.1}, V2)  # C61
    assert "overhead-fraction-ignored" in _notice_codes(memory, "info")
    memory = resolve_jobmanager({H: "1g", P: "1600m"}, V2)  # C12: fraction not configured
    assert "overhead-fraction-ignored" not in _notice_codes(memory)


def test_warnings_are_the_warning_level_notices() -> None:
    memory = resolve_jobmanager({H: "50m", F: "200m"}, V2)
    assert memory.warnings == tuple(n for n in memory.notices if n.level == "warning")
    assert [n.code for n in memory.warnings] == ["heap-below-minimum"]


def test_bare_number_sizes_are_flagged() -> None:
    memory = resolve_jobmanager({P: 1677721600}, V2)  # C21
    assert "bare-number-size" in _notice_codes(memory, "warning")
    memory = resolve_jobmanager({P: "1600m"}, V2)
    assert "bare-number-size" not in _notice_codes(memory)


# ---------------------------------------------------------------------------------------------
# order: the boolean is read after the memory spec (C49: "breakdown already logged")


def test_direct_memory_flag_is_read_after_the_derivation() -> None:
    assert_fails({P: "100m", DL: "yes"}, E2, V2, NATIVE)
    assert_fails({P: "1600m", DL: "yes"}, E12, V2, NATIVE)


def test_e4_is_checked_before_the_process_size() -> None:
    # Everything present: heap+off != flink is reported before the process checks.
    assert_fails({H: "100m", F: "199m", OFF: "100m", P: "100m"}, E4, V2, NATIVE)


# ---------------------------------------------------------------------------------------------
# section 12: dynamic configs pin the overhead; off-heap honoured in every mode; fraction arithmetic


def test_generate_dynamic_configurations_parse_back() -> None:
    config: dict[str, RawValue] = {H: "1m", OFF: "2m", META: "3m", MIN: "4m", MAX: "5m"}
    memory = resolve_jobmanager(config, V2)
    pairs = dict(re.findall(r"-D (\S+)=(\d+)b", memory.dynamic_configs))
    assert pairs == {
        OFF: str(2 * MIB),
        MIN: str(4 * MIB),
        META: str(3 * MIB),
        H: str(1 * MIB),
        MAX: str(4 * MIB),  # min and max both pinned to the derived overhead
    }
    assert memory.dynamic_configs_map == {k: f"{v}b" for k, v in pairs.items()}
    # The entrypoint re-resolves with the pairs overlaid and must land on the same sizes.
    again = resolve_jobmanager({**config, **memory.dynamic_configs_map}, V2)
    assert again.jvm_args == memory.jvm_args
    assert again.dynamic_configs == memory.dynamic_configs


@pytest.mark.parametrize("base", [{H: "1152m"}, {F: "1280m"}, {P: "1536m"}])
def test_configured_off_heap_is_honoured_in_every_mode(base: dict[str, RawValue]) -> None:
    memory = resolve_jobmanager({**base, OFF: "100m"}, V2)
    assert memory.off_heap == 100 * MIB


@pytest.mark.parametrize("base", [{H: "1152m"}, {F: "1280m"}, {F: "1280m", H: "1152m"}, {P: "1536m"}])
def test_metaspace_and_overhead_options_in_every_mode(base: dict[str, RawValue]) -> None:
    memory = resolve_jobmanager({**base, META: "50m"}, V2)
    assert memory.metaspace == 50 * MIB
    memory = resolve_jobmanager({**base, MIN: "50m", MAX: "200m"}, V2)
    assert 50 * MIB <= memory.overhead <= 200 * MIB
    for bad in ({MIN: "200m", MAX: "50m"}, {FR: "-0.1"}, {FR: "1.0"}):
        assert_fails({**base, **bad}, E6, V2, NATIVE)


@pytest.mark.parametrize("base", [{H: "1152m"}, {F: "1280m"}, {F: "1280m", H: "1152m"}, {P: "1536m"}])
def test_overhead_fraction_arithmetic(base: dict[str, RawValue]) -> None:
    memory = resolve_jobmanager({**base, MIN: "0", MAX: "1t", FR: "0.2"}, V2)
    # 0.2f widened is 0.20000000298023224; MemorySize.multiply truncates the exact decimal product.
    expected = math.floor(Fraction(memory.total_process) * Fraction("0.20000000298023224"))
    assert memory.overhead == expected


def test_total_flink_1g_matches_flink() -> None:
    memory = resolve_jobmanager({F: "1g"}, V2)
    assert memory.total_flink == GIB


def test_total_process_2g_matches_flink() -> None:
    memory = resolve_jobmanager({P: "2g"}, V2)
    assert memory.total_process == 2 * GIB


def test_total_process_sum_overflow() -> None:
    # heap = 2^63-1 - 384 MiB: heap + off-heap + metaspace = 2^63-1 exactly, + 1g overhead overflows.
    assert_fails({H: str((1 << 63) - 1 - 384 * MIB)}, E13, V2, NATIVE)


def test_error_names_the_sizing_options() -> None:
    with pytest.raises(MemoryConflict) as info:
        resolve_jobmanager({}, V2)
    assert set(info.value.option_keys) == {H, F, P}


# ---------------------------------------------------------------------------------------------
# 1.x legacy heap keys: standalone/in-container path maps them to the heap (L-series, C54/C55 on
# 1.20.3), the native client maps them to the total process size (section 11), 2.x ignores them.

LEGACY_STANDALONE: list[tuple[str, dict[str, RawValue], str | None, Expected]] = [
    ("C54", {LEGACY: "1g"}, None, Ok(1073741824, 201326592)),
    ("C55", {LEGACY_MB: 1024}, None, Ok(1073741824, 201326592)),
    ("L01", {LEGACY: "1g", P: "1600m"}, None, Ok(1073741824, 201326592)),
    ("L02", {LEGACY: "2g", P: "1600m"}, None, E9),
    ("L03", {LEGACY_MB: -1}, None, E16),
    ("L04", {P: "1600m"}, "1g", Ok(1073741824, 201326592)),
    ("L05", {P: "1600m"}, "abc", E15),
    ("L06", {LEGACY: "1g", H: "512m"}, None, Ok(536870912, 201326592)),
    ("L07", {LEGACY: "1g", LEGACY_MB: 2048}, None, Ok(1073741824, 201326592)),
    ("L08", {LEGACY_MB: 2048}, "1024m", Ok(1073741824, 201326592)),
    ("L14", {LEGACY_MB: "1024m"}, None, Fails(InvalidOptionValue, Rule.INVALID_VALUE, LEGACY_MB)),
    ("L15", {LEGACY: 1024}, None, Ok(1024, 201326592)),
    ("env-empty", {P: "1600m"}, "", E15),  # set but empty still counts
    ("env-unread", {H: "1g"}, "abc", Ok(1073741824, 201326592)),  # heap already set: no mapping
    ("heap-mb-string", {LEGACY_MB: "1024"}, None, Ok(1073741824, 201326592)),
]


@pytest.mark.parametrize(
    ("name", "config", "env", "expected"), LEGACY_STANDALONE, ids=[v[0] for v in LEGACY_STANDALONE]
)
def test_legacy_heap_on_1x_standalone(
    name: str, config: dict[str, RawValue], env: str | None, expected: Expected
) -> None:
    if isinstance(expected, Ok):
        memory = resolve_jobmanager(config, V1, STANDALONE, legacy_heap_env=env)
        assert_resolves_to(memory, expected)
    else:
        with pytest.raises(FlinkMemError) as info:
            resolve_jobmanager(config, V1, STANDALONE, legacy_heap_env=env)
        assert type(info.value) is expected.error
        assert info.value.rule is expected.rule
        if expected.key is not None:
            assert expected.key in info.value.option_keys


def test_legacy_heap_mapping_is_noted() -> None:
    memory = resolve_jobmanager({LEGACY: "1g"}, V1, STANDALONE)
    assert "legacy-heap-mapped" in _notice_codes(memory)
    memory = resolve_jobmanager({LEGACY: "1g", H: "512m"}, V1, STANDALONE)  # L06: no mapping
    assert "legacy-heap-mapped" not in _notice_codes(memory)


# Section 11, 1.20.3 rows: the native client reads the legacy value as total process memory.
LEGACY_NATIVE: list[tuple[str, dict[str, RawValue], str | None, int | Fails]] = [
    ("heap.size=1g", {LEGACY: "1g"}, None, GIB),
    ("heap.mb=2000", {LEGACY_MB: 2000}, None, 2000 * MIB),
    ("memory.heap.size=1g+heap.size=2g", {H: "1g", LEGACY: "2g"}, None, 2 * GIB),
    ("env 700m + heap.size 1g", {LEGACY: "1g"}, "700m", 700 * MIB),
    ("env 700 bytes", {}, "700", E2),
    ("heap.mb -1", {LEGACY_MB: -1}, None, E16),
    ("env abc", {}, "abc", E15),
]


@pytest.mark.parametrize(("name", "config", "env", "expected"), LEGACY_NATIVE, ids=[v[0] for v in LEGACY_NATIVE])
def test_legacy_heap_on_1x_native(
    name: str, config: dict[str, RawValue], env: str | None, expected: int | Fails
) -> None:
    if isinstance(expected, Fails):
        with pytest.raises(FlinkMemError) as info:
            resolve_jobmanager(config, V1, NATIVE, legacy_heap_env=env)
        assert type(info.value) is expected.error
        assert info.value.rule is expected.rule
    else:
        memory = resolve_jobmanager(config, V1, NATIVE, legacy_heap_env=env)
        assert memory.total_process == expected


def test_legacy_heap_native_and_standalone_differ() -> None:
    native = resolve_jobmanager({LEGACY: "1g"}, V1, NATIVE)
    standalone = resolve_jobmanager({LEGACY: "1g"}, V1, STANDALONE)
    assert_resolves_to(native, C04)  # 1g read as the total process size
    assert_resolves_to(standalone, Ok(1073741824, 201326592))  # 1g read as the heap
    # The explicit new heap option stays in force under the native mapping.
    both = resolve_jobmanager({H: "1g", LEGACY: "2g"}, V1, NATIVE)
    assert both.heap == GIB
    assert both.overhead == 640 * MIB  # 2g - 1g - 128m - 256m


def test_legacy_heap_is_not_mapped_when_the_target_is_set() -> None:
    memory = resolve_jobmanager({P: "1600m", LEGACY: "4g"}, V1, NATIVE, legacy_heap_env="8g")
    assert_resolves_to(memory, C01)


@pytest.mark.parametrize("mode", [NATIVE, STANDALONE])
def test_2x_ignores_legacy_keys_with_a_warning(mode: DeploymentMode) -> None:
    memory = resolve_jobmanager({LEGACY: "1g", LEGACY_MB: 2048, P: "1600m"}, V2, mode, legacy_heap_env="4g")
    assert_resolves_to(memory, C01)  # L12 and C54's 2.3.0 column
    ignored = [n for n in memory.notices if n.code == "legacy-key-ignored"]
    assert len(ignored) == 3
    assert all(n.level == "warning" for n in ignored)
    assert any(LEGACY in n.message for n in ignored)
    assert any(LEGACY_MB in n.message for n in ignored)
    assert any("FLINK_JM_HEAP" in n.message for n in ignored)


@pytest.mark.parametrize("config", [{LEGACY: "1g"}, {LEGACY_MB: 1024}])
def test_2x_legacy_keys_alone_do_not_size_the_jobmanager(config: dict[str, RawValue]) -> None:
    assert_fails(config, E1, V2, NATIVE)
    assert_fails(config, E1, V2, STANDALONE)
    assert_fails(config, E1, FlinkVersion(2, 0), STANDALONE)


def test_2x_ignores_an_invalid_legacy_env() -> None:
    memory = resolve_jobmanager({P: "1600m"}, V2, STANDALONE, legacy_heap_env="abc")
    assert_resolves_to(memory, C01)


# ---------------------------------------------------------------------------------------------
# the result object


def test_to_dict() -> None:
    memory = resolve_jobmanager({P: "1600m", DL: "true"}, V2)
    data = memory.to_dict()
    assert data == {
        "flinkVersion": "2.3",
        "mode": "native",
        "totalProcessMemory": 1677721600,
        "totalFlinkMemory": 1207959552,
        "jvmHeap": 1073741824,
        "offHeap": 134217728,
        "jvmMetaspace": 268435456,
        "jvmOverhead": 201326592,
        "jvmDirectMemory": 134217728,
        "jvmArgs": "-Xmx1073741824 -Xms1073741824 -XX:MaxDirectMemorySize=134217728 -XX:MaxMetaspaceSize=268435456",
        "dynamicConfigs": dynamic_configs(Ok(1073741824, 201326592)),
        "warnings": [],
    }


def test_jvm_flags_tuple() -> None:
    memory = resolve_jobmanager({P: "1600m"}, V2)
    assert memory.jvm_flags == ("-Xmx1073741824", "-Xms1073741824", "-XX:MaxMetaspaceSize=268435456")


def test_options_descriptor() -> None:
    assert JOBMANAGER_OPTIONS.role == "JobManager"
    assert [o.key for o in JOBMANAGER_OPTIONS.required_fine_grained] == [H]
    assert JOBMANAGER_OPTIONS.total_flink.key == F
    assert JOBMANAGER_OPTIONS.total_process.key == P
    assert JOBMANAGER_OPTIONS.metaspace.default == 256 * MIB
    assert JOBMANAGER_OPTIONS.overhead.min.default == 192 * MIB
    assert JOBMANAGER_OPTIONS.overhead.max.default == GIB
    assert JOBMANAGER_OPTIONS.overhead.fraction.default == 0.10000000149011612
    assert set(JOBMANAGER_MEMORY_KEYS) == {P, F, H, OFF, DL, META, MIN, MAX, FR}


def test_largest_heap_from_process_uses_tebibytes() -> None:
    memory = resolve_jobmanager({P: "8388607t"}, V2)
    assert memory.total_process == 8388607 * TIB
