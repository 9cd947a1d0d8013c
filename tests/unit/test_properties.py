"""Property tests: invariants of every resolved JobManager and TaskManager, and the text parsers against independent
models (a plain-Python model of `MemorySize.parse`, and exact rational arithmetic for float32
rounding)."""

from __future__ import annotations

import contextlib
import re
import struct
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from flinkmem.decisions.container import container_memory
from flinkmem.engine import (
    Config,
    DeploymentMode,
    FlinkMemError,
    FlinkVersion,
    JobManagerMemory,
    RawValue,
    TaskManagerMemory,
    resolve_jobmanager,
    resolve_taskmanager,
)
from flinkmem.engine.javatext import JavaNumberFormatError, parse_java_float
from flinkmem.engine.sizes import SizeParseError, parse_memory_size
from flinkmem.sources.roles import JOBMANAGER

MIB = 1 << 20
GIB = 1 << 30
MAX_BYTES = (1 << 63) - 1
V2 = FlinkVersion(2, 3)

P = "jobmanager.memory.process.size"
F = "jobmanager.memory.flink.size"
H = "jobmanager.memory.heap.size"
OFF = "jobmanager.memory.off-heap.size"
DL = "jobmanager.memory.enable-jvm-direct-memory-limit"
META = "jobmanager.memory.jvm-metaspace.size"
MIN = "jobmanager.memory.jvm-overhead.min"
MAX = "jobmanager.memory.jvm-overhead.max"
FR = "jobmanager.memory.jvm-overhead.fraction"
LIMIT_FACTOR = "kubernetes.jobmanager.memory.limit-factor"
ALL_KEYS = (P, F, H, OFF, DL, META, MIN, MAX, FR, "jobmanager.heap.size", "jobmanager.heap.mb", LIMIT_FACTOR)

UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "bytes": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "kibibytes": 1 << 10,
    "m": MIB,
    "mb": MIB,
    "mebibytes": MIB,
    "g": GIB,
    "gb": GIB,
    "gibibytes": GIB,
    "t": 1 << 40,
    "tb": 1 << 40,
    "tebibytes": 1 << 40,
}

PROPERTY = settings(max_examples=300, deadline=None)


# ---------------------------------------------------------------------------------------------
# strategies


@st.composite
def size_text(draw: st.DrawFn, low_mib: int, high_mib: int) -> str:
    """A size between the bounds, spelled in one of Flink's units (or in plain bytes)."""
    mib = draw(st.integers(low_mib, high_mib))
    spelling = draw(st.sampled_from(["m", "mb", "k", "bytes", "bare", "g-if-whole", "odd-bytes"]))
    if spelling == "k":
        return f"{mib * 1024}k"
    if spelling == "bytes":
        return f"{mib * MIB} bytes"
    if spelling == "bare":
        return str(mib * MIB)
    if spelling == "g-if-whole" and mib % 1024 == 0:
        return f"{mib // 1024}g"
    if spelling == "odd-bytes":
        return str(mib * MIB + draw(st.integers(0, MIB - 1)))
    return f"{mib}{spelling if spelling in ('m', 'mb') else 'm'}"


FRACTIONS = st.one_of(
    st.sampled_from(["0", "0.05", "0.1", "0.25", "0.5", "0.9", "1e-1", "0x1p-3", "0.3f", " 0.2 "]),
    st.floats(min_value=0.0, max_value=0.95).map(repr),
)


@st.composite
def plausible_config(draw: st.DrawFn) -> dict[str, RawValue]:
    """Configurations in all three modes that Flink often accepts (and sometimes refuses)."""
    config: dict[str, RawValue] = {}
    mode = draw(st.sampled_from(["process", "flink", "heap", "heap+flink", "mixed"]))
    if mode == "process":
        config[P] = draw(size_text(500, 100 * 1024))
    elif mode == "flink":
        config[F] = draw(size_text(129, 64 * 1024))
    elif mode == "heap":
        config[H] = draw(size_text(0, 64 * 1024))
    elif mode == "heap+flink":
        heap = draw(st.integers(0, 16 * 1024))
        off = draw(st.integers(0, 512))
        config[H] = f"{heap}m"
        config[F] = f"{heap + off}m"
        if draw(st.booleans()):
            config[OFF] = f"{off}m"
    else:
        for key, low, high in ((P, 0, 8192), (F, 0, 4096), (H, 0, 4096)):
            if draw(st.booleans()):
                config[key] = draw(size_text(low, high))
    optional = {
        OFF: size_text(0, 256),
        META: size_text(0, 512),
        MIN: size_text(0, 256),
        MAX: size_text(256, 4096),
        FR: FRACTIONS,
        DL: st.sampled_from(["true", "false", "TRUE"]),
        LIMIT_FACTOR: st.sampled_from(["1", "1.0", "1.001", "1.5", "2", "3.3", "1e3"]),
    }
    for key, strategy in optional.items():
        if draw(st.integers(0, 3)) == 0:
            config[key] = draw(strategy)
    return config


def size_of(text: str) -> int:
    """An independent reading of the sizes generated above."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", text)
    assert match, text
    return int(match[1]) * UNITS[match[2]]


def resolved_or_none(config: Config) -> JobManagerMemory | None:
    try:
        return resolve_jobmanager(config, V2)
    except FlinkMemError:
        return None


# ---------------------------------------------------------------------------------------------
# invariants of resolved results


@PROPERTY
@given(plausible_config())
def test_components_add_up(config: dict[str, RawValue]) -> None:
    memory = resolved_or_none(config)
    if memory is None:
        return
    assert memory.heap + memory.off_heap == memory.total_flink
    assert memory.total_flink + memory.metaspace + memory.overhead == memory.total_process
    assert min(memory.heap, memory.off_heap, memory.metaspace, memory.overhead) >= 0
    assert memory.total_process <= MAX_BYTES
    low = size_of(str(config[MIN])) if MIN in config else 192 * MIB
    high = size_of(str(config[MAX])) if MAX in config else GIB
    assert low <= memory.overhead <= high
    if META in config:
        assert memory.metaspace == size_of(str(config[META]))
    for key, value in ((P, memory.total_process), (F, memory.total_flink), (H, memory.heap)):
        if key in config:
            assert value == size_of(str(config[key]))


@PROPERTY
@given(plausible_config())
def test_jvm_args_and_dynamic_configs_parse_back(config: dict[str, RawValue]) -> None:
    memory = resolved_or_none(config)
    if memory is None:
        return
    flags = re.fullmatch(
        r"-Xmx(\d+) -Xms(\d+)(?: -XX:MaxDirectMemorySize=(\d+))? -XX:MaxMetaspaceSize=(\d+)", memory.jvm_args
    )
    assert flags, memory.jvm_args
    assert int(flags[1]) == int(flags[2]) == memory.heap
    assert int(flags[4]) == memory.metaspace
    direct = str(config.get(DL, "false")).upper() == "TRUE"
    assert (flags[3] is not None) is direct
    if direct:
        assert int(flags[3]) == memory.off_heap
    pairs = re.findall(r"-D (\S+)=(\d+)b", memory.dynamic_configs)
    assert " ".join(f"-D {k}={v}b" for k, v in pairs) == memory.dynamic_configs
    assert [k for k, _ in pairs] == [OFF, MIN, META, H, MAX]
    values = {k: int(v) for k, v in pairs}
    assert values == {
        OFF: memory.off_heap,
        MIN: memory.overhead,
        META: memory.metaspace,
        H: memory.heap,
        MAX: memory.overhead,
    }
    # What the entrypoint does with them: overlay them and resolve again, landing on the same sizes.
    again = resolve_jobmanager({**config, **{k: f"{v}b" for k, v in pairs}}, V2)
    assert (again.heap, again.off_heap, again.metaspace, again.overhead) == (
        memory.heap,
        memory.off_heap,
        memory.metaspace,
        memory.overhead,
    )


@PROPERTY
@given(plausible_config())
def test_container_request_never_below_total_process(config: dict[str, RawValue]) -> None:
    memory = resolved_or_none(config)
    if memory is None:
        return
    sizes = container_memory(memory.total_process, config, JOBMANAGER)
    assert sizes.request_bytes >= memory.total_process
    assert sizes.request_bytes - memory.total_process < MIB
    assert sizes.limit_mib >= sizes.request_mib
    assert sizes.limit_bytes >= memory.total_process * sizes.limit_factor - 1
    assert sizes.flink_request_mib <= sizes.request_mib


# ---------------------------------------------------------------------------------------------
# resolve only ever refuses with FlinkMemError

ANY_VALUE = st.one_of(
    st.text(max_size=24),
    st.text(alphabet="0123456789 .-+eEkKmMgGtTbB_xXpP\t", max_size=24),
    size_text(0, 1 << 24),
    FRACTIONS,
    st.sampled_from(["", " ", "NaN", "Infinity", "-0", "true", "yes", "99999999999999999999", "8388607t", "1e-50"]),
)


@PROPERTY
@given(
    st.dictionaries(st.sampled_from(ALL_KEYS), ANY_VALUE, max_size=len(ALL_KEYS)),
    st.sampled_from([V2, FlinkVersion(1, 20), FlinkVersion(1, 13), FlinkVersion(1, 16), FlinkVersion(2, 0)]),
    st.sampled_from(list(DeploymentMode)),
    st.one_of(st.none(), ANY_VALUE),
)
def test_resolve_raises_only_flinkmem_errors(
    config: dict[str, str], version: FlinkVersion, mode: DeploymentMode, legacy_env: str | None
) -> None:
    with contextlib.suppress(FlinkMemError):
        memory = resolve_jobmanager(config, version, mode, legacy_env)
        container_memory(memory.total_process, config, JOBMANAGER)


# ---------------------------------------------------------------------------------------------
# parse_memory_size against a plain model


def size_model(text: str) -> int | None:
    """MemorySize.parse for the shapes generated below; None when Flink refuses the text."""
    stripped = text.strip(" \t\n\r")
    match = re.fullmatch(r"([0-9]*)(.*)", stripped, re.DOTALL)
    assert match
    digits, rest = match[1], match[2].strip(" \t\n\r").lower()
    if not digits or int(digits) > MAX_BYTES or rest not in UNITS:
        return None
    value = int(digits) * UNITS[rest]
    return value if value <= MAX_BYTES else None


def _random_case(draw: st.DrawFn, text: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c for c in text)


@st.composite
def size_like(draw: st.DrawFn) -> str:
    whitespace = st.text(alphabet=" \t\n\r", max_size=3)
    prefix = draw(st.sampled_from(["", "", "", "+", "-", "."]))
    digits = draw(st.text(alphabet="0123456789", min_size=0, max_size=22))
    unit = draw(st.sampled_from([*UNITS, "kib", "mib", "x", "mm", "m b", "p", "gigabytes", ".5g", "_000"]))
    return f"{draw(whitespace)}{prefix}{digits}{draw(whitespace)}{_random_case(draw, unit)}{draw(whitespace)}"


@PROPERTY
@given(size_like())
def test_parse_memory_size_matches_model(text: str) -> None:
    expected = size_model(text)
    if expected is None:
        try:
            parse_memory_size(text)
        except SizeParseError:
            return
        raise AssertionError(f"{text!r} should be refused")
    assert parse_memory_size(text) == expected


# ---------------------------------------------------------------------------------------------
# parse_java_float against exact rounding to float32

MAX_FINITE_BITS = 0x7F7FFFFF


def float32_value(bits: int) -> Fraction:
    return Fraction(struct.unpack(">f", bits.to_bytes(4, "big"))[0])


def nearest_float32_bits(exact: Fraction) -> int:
    """Bit pattern of the float32 nearest to a non-negative exact value (ties to even, IEEE overflow)."""
    if exact >= float32_value(MAX_FINITE_BITS):
        below = MAX_FINITE_BITS
    else:
        low, high = 0, MAX_FINITE_BITS  # float32_value(low) <= exact < float32_value(high)
        while high - low > 1:
            mid = (low + high) // 2
            if float32_value(mid) <= exact:
                low = mid
            else:
                high = mid
        below = low
    lower = float32_value(below)
    upper = float32_value(below + 1) if below < MAX_FINITE_BITS else Fraction(2) ** 128
    if exact - lower < upper - exact:
        return below
    if exact - lower > upper - exact:
        return below + 1  # 0x7F800000 is +Infinity
    return below if below % 2 == 0 else below + 1


@st.composite
def decimal_text(draw: st.DrawFn) -> tuple[str, Fraction, bool]:
    negative = draw(st.booleans())
    whole = draw(st.text(alphabet="0123456789", max_size=14))
    frac = draw(st.text(alphabet="0123456789", max_size=14))
    if not whole and not frac:
        whole = "0"
    point = "." if frac or draw(st.booleans()) else ""
    exponent = draw(st.one_of(st.none(), st.integers(-60, 45)))
    suffix = draw(st.sampled_from(["", "", "f", "F", "d", "D"]))
    text = f"{'-' if negative else draw(st.sampled_from(['', '+']))}{whole}{point}{frac}"
    if exponent is not None:
        text += f"{draw(st.sampled_from(['e', 'E']))}{exponent}"
    text += suffix
    exact = Fraction(int(whole + frac or "0")) * Fraction(10) ** ((exponent or 0) - len(frac))
    return text, exact, negative


@PROPERTY
@given(decimal_text())
def test_parse_java_float_rounds_correctly(case: tuple[str, Fraction, bool]) -> None:
    text, exact, negative = case
    bits = nearest_float32_bits(exact) | (0x80000000 if negative else 0)
    value = parse_java_float(text)
    assert struct.pack(">f", value) == bits.to_bytes(4, "big"), text


@PROPERTY
@given(st.text(alphabet="0123456789.eE+-fdxXpP_ aN", max_size=12))
def test_parse_java_float_refuses_with_its_own_error(text: str) -> None:
    with contextlib.suppress(JavaNumberFormatError):
        parse_java_float(text)


# ---------------------------------------------------------------------------------------------
# TaskManager invariants (TaskManager notes, sections 1, 5.8 and 8.2)

TM = "taskmanager.memory."
TM_KEYS = {
    "process": TM + "process.size",
    "flink": TM + "flink.size",
    "task_heap": TM + "task.heap.size",
    "managed": TM + "managed.size",
}
TM_DEFAULT_NETWORK_MIN = 64 * MIB
TM_DEFAULT_OVERHEAD = (192 * MIB, GIB)


@st.composite
def tm_config(draw: st.DrawFn) -> dict[str, RawValue]:
    """A TaskManager configuration on one of the three paths, with optional tuning around it."""
    config: dict[str, RawValue] = {}
    path = draw(st.sampled_from(["process", "flink", "fine-grained", "flink+task-heap", "process+flink"]))
    if path in ("process", "process+flink"):
        config[TM_KEYS["process"]] = draw(size_text(600, 96 * 1024))
    if path in ("flink", "flink+task-heap", "process+flink"):
        config[TM_KEYS["flink"]] = draw(size_text(400, 64 * 1024))
    if path in ("fine-grained", "flink+task-heap"):
        config[TM_KEYS["task_heap"]] = draw(size_text(0, 16 * 1024))
    if path == "fine-grained":
        config[TM_KEYS["managed"]] = draw(size_text(0, 16 * 1024))
        if draw(st.booleans()):
            config[TM_KEYS["flink"]] = draw(size_text(400, 64 * 1024))
    for key, low, high in (
        ("framework.heap.size", 0, 512),
        ("framework.off-heap.size", 0, 512),
        ("task.off-heap.size", 0, 1024),
        ("jvm-metaspace.size", 0, 1024),
        ("network.min", 0, 512),
        ("network.max", 256, 4096),
        ("jvm-overhead.min", 0, 512),
        ("jvm-overhead.max", 384, 2048),
    ):
        if draw(st.integers(0, 4)) == 0:
            config[TM + key] = draw(size_text(low, high))
    for key, fractions in (
        ("managed.fraction", ["0", "0.1", "0.25", "0.4", "0.6", "0.7"]),
        ("network.fraction", ["0", "0.05", "0.1", "0.15", "0.2"]),
        ("jvm-overhead.fraction", ["0", "0.05", "0.1", "0.25", "0.5"]),
    ):
        if draw(st.integers(0, 3)) == 0:
            config[TM + key] = draw(st.sampled_from(fractions))
    return config


def tm_resolved(config: Config, mode: DeploymentMode) -> TaskManagerMemory | None:
    try:
        return resolve_taskmanager(config, V2, mode)
    except FlinkMemError:
        return None


@PROPERTY
@given(tm_config(), st.sampled_from(list(DeploymentMode)))
def test_taskmanager_components_add_up(config: dict[str, RawValue], mode: DeploymentMode) -> None:
    memory = tm_resolved(config, mode)
    if memory is None:
        return
    parts = (memory.framework_heap, memory.framework_off_heap, memory.task_heap, memory.task_off_heap)
    assert sum(parts) + memory.network + memory.managed == memory.total_flink
    assert memory.total_flink + memory.metaspace + memory.overhead == memory.total_process
    assert memory.jvm_heap == memory.framework_heap + memory.task_heap
    assert memory.jvm_direct_memory == memory.framework_off_heap + memory.task_off_heap + memory.network
    assert min(*parts, memory.network, memory.managed, memory.metaspace, memory.overhead) >= 0


@PROPERTY
@given(tm_config(), st.sampled_from(list(DeploymentMode)))
def test_taskmanager_capped_components_within_their_ranges(config: dict[str, RawValue], mode: DeploymentMode) -> None:
    memory = tm_resolved(config, mode)
    if memory is None:
        return
    network_min = size_of(str(config.get(TM + "network.min", f"{TM_DEFAULT_NETWORK_MIN}b")))
    network_max = size_of(str(config[TM + "network.max"])) if TM + "network.max" in config else MAX_BYTES
    assert network_min <= memory.network <= network_max
    overhead_min = size_of(str(config.get(TM + "jvm-overhead.min", f"{TM_DEFAULT_OVERHEAD[0]}b")))
    overhead_max = size_of(str(config.get(TM + "jvm-overhead.max", f"{TM_DEFAULT_OVERHEAD[1]}b")))
    assert overhead_min <= memory.overhead <= overhead_max


@PROPERTY
@given(tm_config())
def test_taskmanager_native_pod_against_standalone(config: dict[str, RawValue]) -> None:
    """Section 8.2: the pod keeps every Flink component; only metaspace and overhead are derived again."""
    native = tm_resolved(config, DeploymentMode.NATIVE)
    standalone = tm_resolved(config, DeploymentMode.STANDALONE)
    if native is None:
        return
    assert standalone is not None  # native accepts only what the client (the standalone derivation) accepts
    assert native.total_flink == standalone.total_flink
    assert native.jvm_heap == standalone.jvm_heap and native.jvm_direct_memory == standalone.jvm_direct_memory
    assert (native.network, native.managed) == (standalone.network, standalone.managed)
    if TM_KEYS["process"] not in config:
        assert native.total_process == standalone.total_process
    elif TM_KEYS["flink"] not in config and TM_KEYS["task_heap"] not in config:
        # Only the process size: the pod is the configured size or one byte off it (fractions <= 0.5).
        assert abs(native.total_process - size_of(str(config[TM_KEYS["process"]]))) <= 1


@PROPERTY
@given(tm_config())
def test_taskmanager_dynamic_configs_parse_back(config: dict[str, RawValue]) -> None:
    memory = tm_resolved(config, DeploymentMode.STANDALONE)
    if memory is None:
        return
    pairs = dict(pair.split("=", 1) for pair in memory.dynamic_configs[3:].split(" -D "))
    assert pairs == memory.dynamic_configs_map
    assert size_of(pairs[TM + "task.heap.size"]) == memory.task_heap
    assert size_of(pairs[TM + "network.min"]) == size_of(pairs[TM + "network.max"]) == memory.network
    assert size_of(pairs[TM + "jvm-overhead.min"]) == memory.overhead
    assert float(pairs["taskmanager.cpu.cores"]) == memory.cpu_cores
