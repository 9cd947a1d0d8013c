"""Every parser a tenant's text reaches, fed hostile input: only the parser's own typed error may
escape, and no input costs more than linear time.

Two kinds of tests. Property-based fuzzers build hostile strings (long digit runs in every numeric
grammar, deep nesting, YAML anchors and aliases, surrogates, RTL marks, NUL, combining characters,
long whitespace runs); an exponential path (an alias bomb) misses their CPU deadline. Deterministic
tests feed inputs of up to 3 MiB, where a quadratic path would take hours: they too only have to meet
a deadline no slow machine misses (`tests.support.budget`). Memory is bounded with `tracemalloc`
where measuring is cheap.
"""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flinkmem.decisions.javaopts import memory_flags, with_memory_flags
from flinkmem.engine import FlinkVersion, resolve_jobmanager
from flinkmem.engine.configfile import (
    MAX_CONFIG_CHARS,
    ConfigFileError,
    check_yaml_limits,
    parse_config_yaml,
    parse_legacy_flink_conf,
    resolve_core_scalar,
)
from flinkmem.engine.errors import FlinkMemError, InvalidOptionValue, UnsupportedInput
from flinkmem.engine.javamap import hash_set_order, java_string_hash
from flinkmem.engine.javatext import (
    JavaNumberFormatError,
    java_trim,
    parse_java_double,
    parse_java_float,
    parse_java_int,
    parse_java_long,
)
from flinkmem.engine.legacyheap import LegacyHeapOptions, input_notices, read_legacy_heap
from flinkmem.engine.options import (
    BooleanOption,
    DoubleOption,
    FloatOption,
    IntOption,
    LongOption,
    MemoryOption,
)
from flinkmem.engine.sizes import SizeParseError, parse_memory_size
from flinkmem.engine.versions import DeploymentMode
from flinkmem.engine.workerresources import _ListSyntaxError, parse_string_list, read_cpu, read_external_resources
from flinkmem.sources import shellwords
from flinkmem.sources.quantity import QuantityError, parse_quantity, quantity_bytes
from tests.support.budget import cpu_deadline

MIB = 1 << 20
V2 = FlinkVersion(2, 3)
LEGACY_HEAP_OPTIONS = LegacyHeapOptions(
    "FLINK_JM_HEAP",
    MemoryOption("jobmanager.heap.size"),
    IntOption("jobmanager.heap.mb"),
    MemoryOption("jobmanager.memory.process.size"),
)
_MEMORY = resolve_jobmanager({"jobmanager.memory.process.size": "1600m"}, V2)


def _version(text: str) -> object:
    return FlinkVersion.parse(text)


def _option_reads(text: str) -> None:
    """Every kind of option reading the text, as a raw string value."""
    for option in (
        MemoryOption("k"),
        IntOption("k"),
        LongOption("k"),
        FloatOption("k", 0.1),
        DoubleOption("k", 1.0),
        BooleanOption("k", False),
    ):
        try:
            option.read({"k": text})
        except InvalidOptionValue as exc:
            assert exc.option_keys == ("k",)


def _taskmanager_resources(text: str) -> None:
    read_external_resources({"external-resources": text, f"external-resource.{text[:10]}.amount": "1"})
    read_cpu({"taskmanager.cpu.cores": text})


def _legacy_heap(text: str) -> None:
    read_legacy_heap({}, LEGACY_HEAP_OPTIONS, text)


def _notices(text: str) -> None:
    input_notices(
        {"jobmanager.memory.process.size": text},
        FlinkVersion(1, 20),
        True,
        ("jobmanager.memory.process.size",),
        LEGACY_HEAP_OPTIONS,
        text,
    )


def _with_memory_flags(text: str) -> None:
    with_memory_flags(text, _MEMORY)


def _java_map(text: str) -> None:
    java_string_hash(text)
    hash_set_order([text, text[:1], text[:2]])


# Each parser and the errors it may raise: anything else escaping is a bug.
PARSERS: dict[str, tuple[Callable[[str], Any], tuple[type[BaseException], ...]]] = {
    "javatext.parse_java_double": (parse_java_double, (JavaNumberFormatError,)),
    "javatext.parse_java_float": (parse_java_float, (JavaNumberFormatError,)),
    "javatext.parse_java_int": (parse_java_int, (JavaNumberFormatError,)),
    "javatext.parse_java_long": (parse_java_long, (JavaNumberFormatError,)),
    "javatext.java_trim": (java_trim, ()),
    "sizes.parse_memory_size": (parse_memory_size, (SizeParseError,)),
    "options.read": (_option_reads, (InvalidOptionValue,)),
    "configfile.parse_config_yaml": (parse_config_yaml, (ConfigFileError,)),
    "configfile.parse_legacy_flink_conf": (parse_legacy_flink_conf, (ConfigFileError,)),
    "configfile.resolve_core_scalar": (resolve_core_scalar, (ConfigFileError,)),
    "configfile.check_yaml_limits": (check_yaml_limits, (ConfigFileError,)),
    "workerresources.parse_string_list": (parse_string_list, (_ListSyntaxError,)),
    "workerresources.read_external_resources": (_taskmanager_resources, (FlinkMemError,)),
    "versions.FlinkVersion.parse": (_version, (UnsupportedInput,)),
    "versions.DeploymentMode.parse": (DeploymentMode.parse, (UnsupportedInput,)),
    "legacyheap.read_legacy_heap": (_legacy_heap, (InvalidOptionValue,)),
    "legacyheap.input_notices": (_notices, ()),
    "javamap": (_java_map, ()),
    "quantity.parse_quantity": (parse_quantity, (QuantityError,)),
    "quantity.quantity_bytes": (quantity_bytes, (QuantityError,)),
    "jvmopts.memory_flags": (memory_flags, ()),
    "jvmopts.with_memory_flags": (_with_memory_flags, ()),
    "shellwords.split": (shellwords.split, ()),
}


def _only_typed_errors(name: str, text: str) -> None:
    parse, allowed = PARSERS[name]
    with contextlib.suppress(*allowed):
        parse(text)


# Hypothesis's own deadline measures wall time, which a loaded machine stretches: it is off, and each
# example's CPU time is held to the hang deadline instead. The costliest example (PyYAML's parser
# scanning 1024 nested brackets ahead before the depth limit refuses them) takes 0.25 s on a laptop;
# an alias bomb takes forever. Quadratic paths are the 3 MiB tests' business.
FUZZ_DEADLINE: None = None


def _fuzz(name: str, text: str) -> None:
    with cpu_deadline(f"{name} on {len(text):,} characters"):
        _only_typed_errors(name, text)


# ---------------------------------------------------------------------------------------------
# Property-based fuzzers

_ODD = [
    "\ud800",  # a lone high surrogate
    "\udfff",  # a lone low surrogate
    "\U0001f600",  # outside the BMP: a surrogate pair to Java
    "\u200f",  # right-to-left mark
    "\u202e",  # right-to-left override
    "\x00",
    "\u0301",  # combining acute accent
    "\ufeff",  # byte order mark
    "\u00a0",  # no-break space (not Java whitespace)
    "\u2028",  # line separator (Java whitespace, no YAML break)
    "\u0660",  # Arabic-Indic zero (a decimal digit to Java and Python)
    "\uff11",  # fullwidth one
    "\U0001d7cf",  # mathematical bold one (a digit to Python, two surrogates to Java)
    "\x1f",
    "\x7f",
    "\t",
    "\r\n",
]
_GRAMMAR = [
    "0", "1", "9", ".", "-", "+", "e", "E", "e-", "x", "0x", "0o", "p", "P", "f", "d", "m", "Mi", "g", "kb",
    "NaN", "Infinity", "-Xmx", "-XX:MaxMetaspaceSize=", "v", "_", ";", ",", "[", "]", "{", "}", ": ", "- ",
    "'", '"', "\\", "#", "&a ", "*a", "!!str ", "~", "null", "\n", "\n  ", " ",
]  # fmt: skip
_PIECES = st.sampled_from(_GRAMMAR + _ODD)


@st.composite
def hostile_text(draw: st.DrawFn) -> str:
    """Short pieces of every grammar and odd characters, some repeated up to 10,000 times."""
    parts: list[str] = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        piece = draw(_PIECES) + draw(st.one_of(st.just(""), _PIECES))
        repeat = draw(st.sampled_from([1, 1, 2, 3, 64, 1000, 10_000]))
        parts.append(piece * repeat)
    return "".join(parts)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(
    max_examples=50,
    deadline=FUZZ_DEADLINE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(text=hostile_text())
def test_fuzzed_hostile_text_raises_only_typed_errors(name: str, text: str) -> None:
    _fuzz(name, text)


_NESTING_PARSERS = (
    "configfile.parse_config_yaml",
    "configfile.check_yaml_limits",
    "workerresources.parse_string_list",
    "workerresources.read_external_resources",
)


@pytest.mark.parametrize("name", _NESTING_PARSERS)
@settings(max_examples=40, deadline=FUZZ_DEADLINE, suppress_health_check=[HealthCheck.too_slow])
@given(
    depth=st.sampled_from([1, 2, 63, 64, 65, 999, 1000, 1001, 5000, 20_000]),
    opener=st.sampled_from(["[", "{a: ", "- ", "[a, ", "{", "? ", "a:\n "]),
    closed=st.booleans(),
    under_a_key=st.booleans(),
)
def test_fuzzed_nesting_raises_only_typed_errors(
    name: str, depth: int, opener: str, closed: bool, under_a_key: bool
) -> None:
    closer = {"[": "]", "{a: ": "}", "[a, ": "]", "{": "}"}.get(opener, "") if closed else ""
    text = opener * depth + "x" + closer * depth
    _fuzz(name, "k: " + text if under_a_key else text)


@settings(max_examples=30, deadline=FUZZ_DEADLINE)
@given(levels=st.integers(min_value=1, max_value=12), width=st.integers(min_value=2, max_value=12))
def test_fuzzed_alias_bombs_are_refused(levels: int, width: int) -> None:
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    text = "\n".join(lines)
    for check in (parse_config_yaml, check_yaml_limits):
        with pytest.raises(ConfigFileError, match="anchor &a0 is refused"):
            check(text)


# ---------------------------------------------------------------------------------------------
# Deterministic budgets: inputs of up to 3 MiB

SIZE = 3 * MIB


def _fill(unit: str, head: str = "", tail: str = "", size: int = SIZE) -> str:
    return head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail


HOSTILE: dict[str, str] = {
    "digits then x": _fill("1", tail="x"),
    "digits": _fill("1"),
    "zeros then one": _fill("0", tail="1"),
    "long fraction": _fill("1", ".", "e-9"),
    "long exponent": _fill("1", "1e", "!"),
    "hex float": _fill("f", "0x", "p0"),
    "hex then x": _fill("f", "0x", "x"),
    "whitespace run": _fill(" \t", tail="1") + "\x00" * 1000,
    "open brackets": _fill("["),
    "open braces": _fill("{a: "),
    "block dashes": _fill("- "),
    "quotes": _fill("'"),
    "double quotes": _fill('"'),
    "backslashes": _fill("\\"),
    "RTL marks": _fill("\u200f", tail="1"),
    "combining": _fill("\u0301", "1"),
    "NUL": _fill("\x00"),
    "surrogates": _fill("\ud800", size=MIB),
    "Arabic zeros": _fill("\u0660", tail="1"),
    "semicolon list": _fill("a;"),
    "huge heap flag": _fill("9", "-Xmx"),
    "empty quoted words": _fill("'' "),
    "mixed quotes words": _fill("'\"' "),
    "escaped blanks": _fill("\\ "),
    "version-like": _fill("1.", tail="x"),
    "quantity-like": _fill("1", tail="Mi"),
}


# Hashing costs the same per character whatever the text: three shapes suffice.
_INPUTS_OF = {"javamap": ("digits", "surrogates", "RTL marks")}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_three_mebibyte_inputs_within_budget(name: str) -> None:
    for label in _INPUTS_OF.get(name, tuple(HOSTILE)):
        with cpu_deadline(f"{name} on {label!r}"):
            _only_typed_errors(name, HOSTILE[label])


# Configuration files are refused beyond 256 KiB; these fill it with the costliest shapes for
# PyYAML's pure-Python parser.
YAML_AT_CAP: dict[str, str] = {
    "flow items": _fill("a,", "k: [", "]", MAX_CONFIG_CHARS),
    "keys": "".join(f"k{i}: {i}\n" for i in range(MAX_CONFIG_CHARS // 12))[:MAX_CONFIG_CHARS],
    "nested sequences": "k: " + "[" * 63 + "a," * ((MAX_CONFIG_CHARS - 200) // 2) + "]" * 63,
    "plain words": _fill("a ", "k: ", "", MAX_CONFIG_CHARS),
    "multi-line plain": _fill(" a\n", "k: a\n", "", MAX_CONFIG_CHARS),
    "block dashes": _fill("- ", "k: ", "", MAX_CONFIG_CHARS),
    "open brackets": _fill("[", "k: ", "", MAX_CONFIG_CHARS),
    "indented keys": "".join(" " * i + f"k{i}:\n" for i in range(700)),
    "comments": _fill("#\n", size=MAX_CONFIG_CHARS),
}


@pytest.mark.parametrize("label", sorted(YAML_AT_CAP))
def test_configuration_files_at_the_size_limit_within_budget(label: str) -> None:
    text = YAML_AT_CAP[label]
    assert len(text) <= MAX_CONFIG_CHARS
    for parse in (parse_config_yaml, check_yaml_limits):
        with cpu_deadline(f"{parse.__name__} on {label!r}"), contextlib.suppress(ConfigFileError):
            parse(text)


def _peak_bytes(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        with contextlib.suppress(ConfigFileError, JavaNumberFormatError, InvalidOptionValue, SizeParseError):
            action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded() -> None:
    bomb = "\n".join(
        [f"a0: &a0 [{', '.join(['x'] * 9)}]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    )
    assert _peak_bytes(lambda: parse_config_yaml(bomb)) < MIB
    assert _peak_bytes(lambda: parse_config_yaml("k: " + "[" * 20_000)) < 4 * MIB
    # A 3 MiB number is parsed with a few copies of its text at most, never a big integer per digit.
    digits = HOSTILE["long fraction"]
    assert _peak_bytes(lambda: parse_java_double(digits)) < 8 * SIZE
    assert _peak_bytes(lambda: DoubleOption("k", 1.0).read({"k": digits})) < 8 * SIZE
    assert _peak_bytes(lambda: memory_flags(HOSTILE["huge heap flag"])) < 8 * SIZE


# ---------------------------------------------------------------------------------------------
# Versions and modes: short texts only, shortened in messages


def test_long_version_texts_are_refused_unparsed_and_quoted_short() -> None:
    for text in ("1." + "1" * 10_000, "1" * 100_000 + "x", " " * 100_000 + "2.3" + " " * 100_000):
        with pytest.raises(UnsupportedInput) as caught:
            FlinkVersion.parse(text)
        assert f"({len(text):,} characters)" in str(caught.value)
        assert len(str(caught.value)) < 300
    # Up to 64 characters a version is parsed as before: leading zeros are no digits of their own.
    assert FlinkVersion.parse("2." + "0" * 60 + "3") == FlinkVersion(2, 3)
    assert FlinkVersion.parse(" v1_20 ") == FlinkVersion(1, 20)


def test_long_deployment_modes_are_quoted_short() -> None:
    with pytest.raises(UnsupportedInput) as caught:
        DeploymentMode.parse("x" * 1_000_000)
    assert "(1,000,000 characters)" in str(caught.value)
    assert len(str(caught.value)) < 300
