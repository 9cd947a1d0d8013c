"""The native batch fast path (`native/`, built by `make install`) answers exactly as the Python path,
for JobManager and TaskManager lines.

The Python engine is the reference (and is itself checked against real Flink); every line the
native code answers must be the same bytes, and every line it leaves alone must reach Python.
"""

from __future__ import annotations

import json
import math
import os
import random
import struct
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkmem.cli import batch
from flinkmem.engine import FlinkVersion
from flinkmem.engine.jobmanager.options import JOBMANAGER_MEMORY_KEYS, LEGACY_HEAP, LEGACY_HEAP_MB
from flinkmem.engine.lines import LINES
from flinkmem.engine.taskmanager.options import DEPRECATED_KEYS, TASKMANAGER_MEMORY_KEYS
from tests.differential.cases import generate
from tests.differential.tmcases import generate as generate_taskmanagers
from tests.differential.tmvectors import scenario_records, vector_records

try:
    from flinkmem import _fastpath
except ImportError as exc:  # not a skip: `make install` always builds it, so its absence is a failure
    pytest.fail(f"flinkmem._fastpath is not built ({exc}); run `make install`", pytrace=False)

VERSIONS = [FlinkVersion(1, 20), FlinkVersion(2, 3), FlinkVersion(2, None)]
# Every option the JobManager reads, plus one it ignores that appears in real configurations.
KEYS = (*JOBMANAGER_MEMORY_KEYS, LEGACY_HEAP.key, LEGACY_HEAP_MB.key, "kubernetes.jobmanager.memory.limit-factor")


def native(line: bytes, version: FlinkVersion) -> bytes | None:
    return _fastpath.resolve_line(line, version.major, -1 if version.minor is None else version.minor)


def assert_same(line: bytes, version: FlinkVersion) -> bool:
    """True when the native path answered (and agreed); False when it left the line to Python."""
    answer = native(line, version)
    if answer is None:
        return False
    assert answer == batch.resolve_line_in_python(line, version), line
    return True


def test_batch_uses_the_fast_path() -> None:
    assert batch.FASTPATH


@pytest.mark.parametrize("version", ["1.20", "2.3"])
def test_generated_cases_agree(version: str) -> None:
    records = generate(version, 20_000, 777)
    default = FlinkVersion.parse(version)
    answered = sum(assert_same(json.dumps(record).encode(), default) for record in records)
    # Only lines with non-ASCII option values (a few percent of this adversarial mix) go to Python;
    # if many more did, `resolve --batch` would silently lose its speed.
    assert answered >= 0.9 * len(records)


def test_compact_and_spaced_json_agree() -> None:
    record = {"id": 7, "config": {KEYS[0]: "1600m", "x": "y"}, "mode": "standalone", "flinkVersion": "v1_19"}
    for text in (json.dumps(record), json.dumps(record, separators=(",", ":")), json.dumps(record, indent=None)):
        assert assert_same(text.encode(), FlinkVersion(2, 3))
    assert assert_same(b' \t{ "config" : { "jobmanager.memory.heap.size" : "1g" } , "id" : null }\r ', VERSIONS[1])


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": 1, "id": "two", "config": {"jobmanager.memory.heap.size": "1g", "jobmanager.memory.heap.size": "2g"}}',
        b'{"config": {"x": "1"}, "config": {"jobmanager.memory.flink.size": "1g"}, "mode": null, "flinkVersion": null}',
        b'{"config": {"jobmanager.memory.process.size": "1g"}, "mode": "standalone", "mode": "native"}',
        b'{"id": -0, "config": {"jobmanager.memory.process.size": "1g"}, "flinkVersion": "1.20", '
        b'"flinkVersion": "2.0"}',
        b'{"id": "\\u00e9\\t\\"\\\\\\/\\ud83d\\ude00", "config": {"jobmanager.heap.mb": "00512"}, '
        b'"flinkVersion": "v1_15"}',
    ],
)
def test_duplicates_nulls_and_escapes_agree(line: bytes) -> None:
    assert assert_same(line, VERSIONS[1])


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"not json",
        b"[]",
        b'{"config": {}, "extra": 1}',
        b'{"config": {"jobmanager.memory.process.size": 1600}}',
        b'{"config": {"jobmanager.memory.process.size": "1600\xc2\xa0m"}}',
        b'{"config": {"jobmanager.memory.process.size": "1600\\u00a0m"}}',
        b'{"id": 1.5, "config": {"jobmanager.memory.process.size": "1g"}}',
        b'{"id": 12345678901234567890, "config": {"jobmanager.memory.process.size": "1g"}}',
        b'{"id": "\\ud800", "config": {"jobmanager.memory.process.size": "1g"}}',
        b'{"config": {"jobmanager.memory.process.size": "1g"}, "flinkVersion": "3.0"}',
        b'{"config": {"jobmanager.memory.process.size": "1g"}, "flinkVersion": " 2.3"}',
        b'{"config": {"jobmanager.memory.process.size": "1g"}, "mode": "Native"}',
        b'{"config": {"jobmanager.memory.process.size": "1g"}} trailing',
        b'{"config": {"jobmanager.memory.process.size": "1g"}',
        b'\xff{"config": {}}',
    ],
)
def test_unusual_lines_are_left_to_python(line: bytes) -> None:
    assert native(line, VERSIONS[1]) is None


def test_chunk_keeps_order_and_hands_the_rest_to_python() -> None:
    lines = [
        b'{"id": 1, "config": {"jobmanager.memory.process.size": "1g"}}',
        b"oops",
        b'{"id": 2, "config": {"jobmanager.memory.process.size": "1\\u212a"}}',
        b'{"id": 3, "config": {"jobmanager.memory.heap.size": "64m"}}',
    ]
    handed: list[bytes] = []

    def fallback(line: bytes) -> bytes:
        handed.append(line)
        return batch.resolve_line_in_python(line, VERSIONS[1])

    answer = _fastpath.resolve_chunk(b"\n".join(lines), 2, 3, fallback)
    assert handed == [lines[1], lines[2]]
    assert answer == b"".join(batch.resolve_line_in_python(line, VERSIONS[1]) + b"\n" for line in lines)
    assert batch.resolve_chunk(b"\n".join(lines) + b"\n", VERSIONS[1]) == answer


def test_fallback_errors_propagate() -> None:
    def broken(line: bytes) -> bytes:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _fastpath.resolve_chunk(b"oops\n", 2, 3, broken)


def test_switched_off_by_environment() -> None:
    code = "from flinkmem.cli import batch; print(batch.FASTPATH)"
    env = {**os.environ, "FLINKMEM_NO_FASTPATH": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# Option values built to reach every branch: sizes in any spelling, fractions that sit on or near
# float32 ties (decimal and hex), overflowing and subnormal numbers, and booleans and integers.
_ascii_noise = st.text(alphabet=st.sampled_from(" \t\n\r\x00\x0b\x0c\x1f\x7f'\"\\,.-+_"), max_size=3)
_UNIT_SPELLINGS = [
    *("", "b", "bytes", "k", "kb", "kibibytes", "m", "mb", "mebibytes"),
    *("g", "gb", "gibibytes", "t", "tb", "tebibytes"),
    *("x", "mib", "B", "KB", "Mb", "GIBIBYTES", "tB", "byte"),
]
_units = st.sampled_from(_UNIT_SPELLINGS)
_digits = st.one_of(
    st.integers(0, 2**70).map(str),
    st.integers(0, 4096).map(str),
    st.integers(1, 60).map(lambda n: "0" * n + "1"),
    st.integers(20, 60).map(lambda n: "9" * n),
)


@st.composite
def _size_text(draw: st.DrawFn) -> str:
    text = draw(_digits) + draw(st.sampled_from(["", " ", "  ", "\t"])) + draw(_units)
    if draw(st.booleans()):
        text = draw(_ascii_noise) + text + draw(_ascii_noise)
    return text


def _float32_midpoint(bits: int) -> Fraction:
    """The exact value halfway between the float32 with these bits and the next one up."""
    low = struct.unpack("<f", struct.pack("<I", bits))[0]
    high = struct.unpack("<f", struct.pack("<I", bits + 1))[0] if bits < 0x7F7FFFFF else 2.0**128
    return (Fraction(low) + Fraction(high)) / 2


def _float32_middle(draw: st.DrawFn) -> Fraction:
    return _float32_midpoint(draw(st.integers(0, 0x7F7FFFFF)))


@st.composite
def _float32_hex_tie(draw: st.DrawFn) -> str:
    """A float32 tie in hex, exactly or nudged by one unit many hex digits further right."""
    middle = _float32_middle(draw)
    shift = draw(st.integers(0, 40))
    nudge = draw(st.sampled_from([0, 1, -1])) if shift else 0
    mantissa = middle.numerator * 16**shift + nudge
    exponent = -(middle.denominator.bit_length() - 1) - 4 * shift
    return f"0x{mantissa:x}p{exponent}"


@st.composite
def _float32_tie(draw: st.DrawFn) -> str:
    """The exact decimal midway between two neighbouring float32 values, maybe nudged by 1e-60."""
    middle = _float32_middle(draw)
    nudge = draw(st.sampled_from([Fraction(0), Fraction(1, 10**60), -Fraction(1, 10**60)]))
    value = middle + nudge
    whole, rest = divmod(value.numerator, value.denominator)
    digits = []
    for _ in range(draw(st.integers(1, 120))):
        rest *= 10
        digit, rest = divmod(rest, value.denominator)
        digits.append(str(digit))
    return f"{whole}.{''.join(digits)}"


@st.composite
def _fraction_text(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 6))
    if kind == 6:
        return draw(_float32_hex_tie())
    if kind == 0:
        return repr(draw(st.floats(allow_nan=False, allow_infinity=False)))
    if kind == 1:
        return draw(_float32_tie())
    if kind == 2:
        mantissa = draw(st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=40))
        point = draw(st.integers(0, len(mantissa)))
        body = mantissa[:point] + draw(st.sampled_from(["", "."])) + mantissa[point:]
        exponent = draw(st.one_of(st.integers(-200, 200), st.integers(-(10**12), 10**12)))
        return f"{draw(st.sampled_from(['', '-', '+']))}0{draw(st.sampled_from('xX'))}{body}p{exponent}"
    if kind == 3:
        number = draw(st.decimals(allow_nan=False, allow_infinity=False, places=draw(st.integers(0, 50))))
        return str(number) + draw(st.sampled_from(["", "f", "D", "e5", "E-3", "e", "e+"]))
    if kind == 4:
        specials = ["NaN", "-NaN", "Infinity", "-Infinity", "+Infinity", "inf", "nan", ".", "1e", "0.1x"]
        return draw(st.sampled_from(specials))
    return draw(st.text(alphabet="0123456789.eE+-fFdDxXpP ", max_size=12))


_values = {
    "jobmanager.memory.enable-jvm-direct-memory-limit": st.sampled_from(
        ["true", "FALSE", "True", "fAlSe", "yes", "1", "", " true", "truee"]
    ),
    "jobmanager.memory.jvm-overhead.fraction": _fraction_text(),
    "jobmanager.heap.mb": st.one_of(
        st.integers(-(2**33), 2**33).map(str), st.sampled_from(["+1024", "-0", "00001024", "1 024", "", "1e3"])
    ),
    "kubernetes.jobmanager.memory.limit-factor": st.sampled_from(["1.5", "x"]),
}


def _value(key: str) -> st.SearchStrategy[str]:
    return _values.get(key, _size_text())


_configs = st.lists(st.sampled_from(KEYS), unique=True, max_size=8).flatmap(
    lambda keys: st.fixed_dictionaries({key: _value(key) for key in keys})
)
_ids = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**18), 10**18),
    st.text(max_size=12),
)


@given(
    record_id=_ids,
    config=_configs,
    version=st.sampled_from([None, "1.20", "v1_12", "2.3", "v2_x", "2.0.1", "1.19.2", "V1_15", "1.13.6", "v2_4"]),
    mode=st.sampled_from([None, "native", "standalone", ""]),
    default=st.sampled_from(VERSIONS),
    ascii_only=st.booleans(),
)
@settings(max_examples=3000, deadline=None)
def test_native_answers_match_python(
    record_id: object,
    config: dict[str, str],
    version: str | None,
    mode: str | None,
    default: FlinkVersion,
    ascii_only: bool,
) -> None:
    record: dict[str, object] = {"id": record_id, "config": config}
    if version is not None:
        record["flinkVersion"] = version
    if mode is not None:
        record["mode"] = mode
    assert_same(json.dumps(record, ensure_ascii=ascii_only).encode(), default)


def _with_fraction(text: str) -> bytes:
    """A configuration whose answer shows the fraction's exact float32 value.

    Out-of-range fractions are printed in the refusal; in range, the uncapped overhead of 1 TiB
    resolves the fraction to 2^-40, far finer than float32's 2^-24.
    """
    config = {
        "jobmanager.memory.jvm-overhead.fraction": text,
        "jobmanager.memory.process.size": "1t",
        "jobmanager.memory.jvm-overhead.min": "0",
        "jobmanager.memory.jvm-overhead.max": "1t",
    }
    return json.dumps({"config": config}).encode()


@given(st.floats(width=32, allow_nan=False), st.sampled_from(["", "f", "d"]))
@settings(max_examples=1000, deadline=None)
def test_float32_text_round_trips(value: float, suffix: str) -> None:
    text = ("-" if math.copysign(1, value) < 0 else "") + f"{abs(value):.9e}{suffix}"
    assert assert_same(_with_fraction(text), VERSIONS[1])


def _tie_texts(seed: int, count: int) -> list[str]:
    """Float32 ties in hex and decimal, exact and nudged either way at many digit positions."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        middle = _float32_midpoint(rng.choice([rng.randrange(0x3D000000, 0x3F800000), rng.randrange(0, 0x7F800000)]))
        point = middle.denominator.bit_length() - 1
        for shift in (0, 8, 24, 26, 31, 40):
            for last_digit in (-1, 0, 1) if shift else (0,):
                texts.append(f"0x{middle.numerator * 16**shift + last_digit:x}p-{point + 4 * shift}")
        for offset in (Fraction(0), Fraction(1, 10**70), -Fraction(1, 10**70)):
            value = middle + offset
            texts.append(f"{value.numerator * 10**90 // value.denominator}e-90")
    return texts


def test_float32_ties_with_far_digits() -> None:
    # Digits far beyond float32's precision decide a tie; hex keeps 30 digits and a sticky bit.
    for text in _tie_texts(2024, 400):
        assert assert_same(_with_fraction(text), VERSIONS[1]), text


@given(st.one_of(_float32_tie(), _float32_hex_tie()))
@settings(max_examples=1000, deadline=None)
def test_float32_ties_round_to_even(text: str) -> None:
    assert assert_same(_with_fraction(text), VERSIONS[1])


# ---------------------------------------------------------------------------------------------
# TaskManager lines ("role": "taskmanager")

TM_KEYS = (
    *TASKMANAGER_MEMORY_KEYS,
    *DEPRECATED_KEYS,
    "taskmanager.numberOfTaskSlots",
    "taskmanager.cpu.cores",
    "kubernetes.taskmanager.cpu.amount",
    "kubernetes.taskmanager.cpu",
    "taskmanager.heap.size",
    "taskmanager.heap.mb",
    "taskmanager.network.numberOfBuffers",
    "taskmanager.memory.segment-size",
    "state.backend.type",
    "taskmanager.memory.managed.consumer-weights",
)


@pytest.mark.parametrize("version", ["1.20", "2.3"])
def test_generated_taskmanager_cases_agree(version: str) -> None:
    records = vector_records() + scenario_records() + generate_taskmanagers(version, 20_000, 778)
    default = FlinkVersion.parse(version)
    answered = sum(assert_same(json.dumps(record).encode(), default) for record in records)
    # Extended resources and non-ASCII values go to Python; nearly everything else must not.
    assert answered >= 0.85 * len(records)


@pytest.mark.parametrize(
    "line",
    [
        b'{"role": "taskmanager", "config": {"taskmanager.memory.process.size": "4g"}}',
        b'{"role": null, "config": {"jobmanager.memory.process.size": "1g"}}',
        b'{"role": "jobmanager", "config": {"taskmanager.memory.process.size": "4g"}}',
        b'{"config": {"taskmanager.memory.process.size": "1g", "taskmanager.memory.process.size": "4g"}, '
        b'"role": "taskmanager", "mode": "standalone"}',
        b'{"role": "taskmanager", "config": {"taskmanager.memory.task.heap.size": "1g", '
        b'"taskmanager.memory.size": "1g"}, "flinkVersion": "v1_20"}',
        b'{"role": "taskmanager", "config": {"taskmanager.heap.size": "1g"}, "flinkVersion": "1.20"}',
        b'{"role": "taskmanager", "config": {"taskmanager.memory.process.size": "600m"}}',
        b'{"role": "taskmanager", "config": {"taskmanager.memory.process.size": "4g", "external-resources": '
        b'" gpu ; fpga;;x", "external-resource.gpu.amount": "2", "external-resource.fpga.amount": "1", '
        b'"external-resource..amount": "9223372036854775807", "external-resource.x.amount": "-1"}}',
        b'{"role": "taskmanager", "config": {"taskmanager.memory.process.size": "4g", "external-resources": '
        b'"[gpu, fpga,]", "external-resource.gpu.amount": "2", "external-resource.fpga.amount": "x"}}',
    ],
)
def test_taskmanager_roles_answered_natively(line: bytes) -> None:
    assert assert_same(line, VERSIONS[1])


@pytest.mark.parametrize(
    "line",
    [
        b'{"role": "TaskManager", "config": {"taskmanager.memory.process.size": "4g"}}',
        b'{"role": "worker", "config": {}}',
        b'{"role": 1, "config": {}}',
        b'{"role": "taskmanager", "config": {"taskmanager.memory.process.size": "4g", '
        b'"external-resources": "[gpu, 1]"}}',
        b'{"role": "taskmanager", "config": {"taskmanager.memory.process.size": "4g", '
        b'"external-resources": "\'gpu\'"}}',
        b'{"role": "taskmanager", "config": {"taskmanager.memory.process.size": "4g", '
        b'"taskmanager.cpu.cores": "0x1p1"}}',
        b'{"role": "taskmanager", "config": {"taskmanager.memory.process.size": "4\\u00a0g"}}',
    ],
)
def test_unusual_taskmanager_lines_are_left_to_python(line: bytes) -> None:
    assert native(line, VERSIONS[1]) is None


def test_mixed_role_chunk() -> None:
    lines = [json.dumps(record).encode() for record in generate_taskmanagers("2.3", 300, 5)]
    lines += [json.dumps(record).encode() for record in generate("2.3", 300, 5)]
    random.Random(3).shuffle(lines)
    chunk = b"\n".join(lines) + b"\n"
    expected = b"".join(batch.resolve_line_in_python(line, VERSIONS[1]) + b"\n" for line in lines)
    assert batch.resolve_chunk(chunk, VERSIONS[1]) == expected


_tm_values = {
    "taskmanager.memory.managed.fraction": _fraction_text(),
    "taskmanager.memory.network.fraction": _fraction_text(),
    "taskmanager.network.memory.fraction": _fraction_text(),
    "taskmanager.memory.jvm-overhead.fraction": _fraction_text(),
    "taskmanager.numberOfTaskSlots": st.one_of(
        st.integers(-3, 64).map(str), st.sampled_from(["", " 2", "2.0", "+3", "-0", "2147483648"])
    ),
    "taskmanager.cpu.cores": st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["0.000000001", "1e-8", "NaN", "-Infinity", "2d", " 3 ", "abc", "1e400", "-0.0"]),
        st.decimals(min_value=0, max_value=10**9, places=12).map(str),
    ),
    "kubernetes.taskmanager.cpu.amount": st.sampled_from(["2", "-1", "0.5", "x", "Infinity", "1e-9"]),
    "kubernetes.taskmanager.cpu": st.sampled_from(["3", "0", "NaN"]),
    "taskmanager.heap.mb": st.one_of(st.integers(-(2**33), 2**33).map(str), st.sampled_from(["", "1e3"])),
    "taskmanager.network.numberOfBuffers": st.sampled_from(["1024", "4096", "-1", "0", "x", " 8"]),
    "taskmanager.memory.segment-size": st.sampled_from(["32k", "4k", "1000", "48k", "2g", "x", "64 kb"]),
    "state.backend.type": st.sampled_from(["rocksdb", "RocksDB ", "hashmap", ""]),
    "taskmanager.memory.managed.consumer-weights": st.just("OPERATOR:70"),
}
_tm_configs = st.lists(st.sampled_from(TM_KEYS), unique=True, max_size=9).flatmap(
    lambda keys: st.fixed_dictionaries({key: _tm_values.get(key, _size_text()) for key in keys})
)


@given(
    config=_tm_configs,
    sizing=st.sampled_from(
        [{}, {"taskmanager.memory.process.size": "4g"}, {"taskmanager.memory.flink.size": "3g"}, {}]
    ),
    version=st.sampled_from([None, "1.20", "2.3", "v2_x", "1.19.2", "1.13", "v1_16", "1.18.1", "2.4", "1.12"]),
    mode=st.sampled_from([None, "native", "standalone"]),
    default=st.sampled_from(VERSIONS),
)
@settings(max_examples=3000, deadline=None)
def test_native_taskmanager_answers_match_python(
    config: dict[str, str], sizing: dict[str, str], version: str | None, mode: str | None, default: FlinkVersion
) -> None:
    record: dict[str, object] = {"id": 1, "role": "taskmanager", "config": {**sizing, **config}}
    if version is not None:
        record["flinkVersion"] = version
    if mode is not None:
        record["mode"] = mode
    assert_same(json.dumps(record).encode(), default)


# --- Flink lines ----------------------------------------------------------------------------------
# The fast path implements the JobManager of every line from 1.13 and the TaskManager of 1.19 on
# (engine.lines: the TaskManager's rules differ before 1.19); every other line goes to Python.

ALL_LINES = [FlinkVersion(major, minor) for major, minor in LINES]


@pytest.mark.parametrize("version", ALL_LINES, ids=str)
def test_every_line_gives_the_same_bytes_either_way(version: FlinkVersion) -> None:
    text = str(version)
    jobmanagers = generate(text, 3000, 779)
    taskmanagers = vector_records() + scenario_records() + generate_taskmanagers(text, 3000, 779)
    answered = [assert_same(json.dumps(record).encode(), version) for record in jobmanagers]
    assert sum(answered) >= 0.9 * len(answered)
    answered = [assert_same(json.dumps(record).encode(), version) for record in taskmanagers]
    if version >= FlinkVersion(1, 19):
        assert sum(answered) >= 0.8 * len(answered)
    else:
        assert not any(answered)  # declined: Python answers with the line's own rules
    lines = [json.dumps(record).encode() for record in jobmanagers[:300] + taskmanagers[:300]]
    random.Random(4).shuffle(lines)
    expected = b"".join(batch.resolve_line_in_python(line, version) + b"\n" for line in lines)
    assert batch.resolve_chunk(b"\n".join(lines), version) == expected


@pytest.mark.parametrize("version", ["1.12", "v1_11", "3.0", "2.4", "v2_10"])
def test_unreleased_and_unsupported_lines_go_to_python(version: str) -> None:
    for role in ("jobmanager", "taskmanager"):
        record = {
            "role": role,
            "config": {"jobmanager.memory.process.size": "1g", "taskmanager.memory.process.size": "2g"},
        }
        assert native(json.dumps({**record, "flinkVersion": version}).encode(), VERSIONS[1]) is None
        assert native(json.dumps(record).encode(), FlinkVersion.parse(version)) is None


def test_a_batch_default_of_any_size_reaches_python() -> None:
    line = b'{"config": {"jobmanager.memory.process.size": "1g"}}'
    for version in (FlinkVersion(2, 10**20), FlinkVersion(10**20, 1)):
        assert batch.resolve_line(line, version) == batch.resolve_line_in_python(line, version)
        assert batch.resolve_chunk(line, version) == batch.resolve_line_in_python(line, version) + b"\n"
