"""Configuration files as Flink loads them: `config.yaml` as YAML 1.2 Core schema (memory-model notes,
section 2.2, vectors Y01-Y21, C56, C57, C67) and the 1.x line parser for `flink-conf.yaml`
(section 2.3, vectors L09-L11)."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkmem.engine import FlinkMemError, FlinkVersion, InvalidOptionValue, MemoryConflict, RawValue, Rule
from flinkmem.engine import resolve_jobmanager as resolve
from flinkmem.engine.configfile import (
    MAX_CONFIG_CHARS,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    ConfigFileError,
    parse_config_yaml,
    parse_legacy_flink_conf,
    resolve_core_scalar,
)
from tests.support.budget import cpu_deadline

P = "jobmanager.memory.process.size"
DL = "jobmanager.memory.enable-jvm-direct-memory-limit"
FR = "jobmanager.memory.jvm-overhead.fraction"

V2 = FlinkVersion(2, 3)
V1 = FlinkVersion(1, 20)

HEAP_1600M = 1073741824  # C01
HEAP_2G = 1530082096  # C02

# ---------------------------------------------------------------------------------------------
# Core-schema typing of plain scalars


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1600", 1600),
        ("+1677721600", 1677721600),
        ("-5", -5),
        ("014400000000", 14400000000),  # leading zeros are decimal in YAML 1.2
        ("0o14400000000", 1677721600),
        ("0x640", 1600),
        ("0x100000000", 4294967296),
        ("0xFf", 255),
        ("99999999999999999999", 99999999999999999999),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("1e-1", 0.1),
        (".5", 0.5),
        ("+.5", 0.5),
        ("1.", 1.0),
        ("1677721600.0", 1677721600.0),
        ("1e5", 100000.0),
        ("1E+5", 100000.0),
        ("-0.0", -0.0),
        # strings, not numbers or booleans, in the Core schema
        ("1_000", "1_000"),
        ("yes", "yes"),
        ("on", "on"),
        ("No", "No"),
        ("tRue", "tRue"),
        ("0X1F", "0X1F"),
        ("0O17", "0O17"),
        ("-0x1F", "-0x1F"),
        ("0b101", "0b101"),
        ("0.1f", "0.1f"),
        ("1600m", "1600m"),
        (".Nan", ".Nan"),
        ("inf", "inf"),
        ("nan", "nan"),
        # An exponent without digits: not a float (Debian's Python 3.11.2 matched one with possessive groups).
        ("83E", "83E"),
        ("1.5e+", "1.5e+"),
    ],
)
def test_core_scalar_typing(text: str, expected: RawValue) -> None:
    value = resolve_core_scalar(text)
    assert type(value) is type(expected)
    assert value == expected


@pytest.mark.parametrize("text", [".inf", ".Inf", ".INF", "+.inf"])
def test_core_scalar_positive_infinity(text: str) -> None:
    assert resolve_core_scalar(text) == math.inf


def test_core_scalar_negative_infinity_and_nan() -> None:
    assert resolve_core_scalar("-.inf") == -math.inf
    for text in (".nan", ".NaN", ".NAN"):
        value = resolve_core_scalar(text)
        assert isinstance(value, float)
        assert math.isnan(value)


@pytest.mark.parametrize("text", ["~", "null", "Null", "NULL", ""])
def test_core_scalar_null(text: str) -> None:
    assert resolve_core_scalar(text) is None


# ---------------------------------------------------------------------------------------------
# parse_config_yaml


def test_nested_maps_flatten_to_dotted_keys() -> None:
    text = "jobmanager:\n  memory:\n    process:\n      size: 2g\n    jvm-overhead.fraction: 0.25\n"
    assert parse_config_yaml(text) == {P: "2g", FR: 0.25}


def test_quoted_scalars_stay_strings() -> None:
    text = "a: '1600'\nb: \"true\"\nc: '0x10'\nd: \"  1600 MB  \"\ne: ''\n"
    assert parse_config_yaml(text) == {"a": "1600", "b": "true", "c": "0x10", "d": "  1600 MB  ", "e": ""}


def test_empty_document() -> None:
    assert parse_config_yaml("") == {}
    assert parse_config_yaml("# only a comment\n") == {}


def test_lists_become_flow_text() -> None:
    assert parse_config_yaml(f"{P}: [1600m]\n") == {P: "[1600m]"}
    assert parse_config_yaml("k: [a, b]\n") == {"k": "[a, b]"}
    assert parse_config_yaml("k:\n  - a\n  - b\n") == {"k": "[a, b]"}


@pytest.mark.parametrize(
    "text",
    [
        f"{P}:\n",  # C56
        f"{P}: ~\n",  # Y14
        f"{P}: null\n",
        "jobmanager:\n  memory:\n    process.size:\n",
    ],
)
def test_null_values_are_fatal(text: str) -> None:
    with pytest.raises(ConfigFileError):
        parse_config_yaml(text)


@pytest.mark.parametrize(
    "text",
    [
        f"{P}: 1600m\n{P}: 2g\n",  # C67
        "jobmanager:\n  a: 1\njobmanager:\n  b: 2\n",
        "jobmanager:\n  memory:\n    x: 1\n    x: 2\n",
    ],
)
def test_duplicate_keys_in_one_mapping_are_fatal(text: str) -> None:
    with pytest.raises(ConfigFileError):
        parse_config_yaml(text)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "k: [unclosed\n", "a: b: c\n", "\tk: v\n"])
def test_not_a_configuration_mapping(text: str) -> None:
    with pytest.raises(ConfigFileError):
        parse_config_yaml(text)


def test_flat_then_nested_later_wins() -> None:
    text = f"{P}: 1600m\njobmanager:\n  memory:\n    process:\n      size: 2g\n"  # Y15
    config = parse_config_yaml(text)
    assert config == {P: "2g"}
    assert resolve(config, V2).heap == HEAP_2G


def test_nested_then_flat_later_wins() -> None:
    text = f"jobmanager:\n  memory:\n    process:\n      size: 2g\n{P}: 1600m\n"  # Y16
    config = parse_config_yaml(text)
    assert config == {P: "1600m"}
    assert resolve(config, V2).heap == HEAP_1600M


def test_nested_spelling_resolves_like_flat() -> None:
    config = parse_config_yaml("jobmanager:\n  memory:\n    process:\n      size: 2g\n")  # C57
    memory = resolve(config, V2)
    assert (memory.heap, memory.overhead) == (1530082096, 214748368)


# ---------------------------------------------------------------------------------------------
# Y-series, through the engine on 2.3

Y_OK: list[tuple[str, str, int, int | None, bool]] = [
    # id, config.yaml text, expected heap, expected overhead (None: not checked), direct limit
    ("Y02", f"{P}: +1677721600\n", HEAP_1600M, 201326592, False),
    ("Y03", f"{P}: 0o14400000000\n", HEAP_1600M, 201326592, False),
    ("Y04", f"{P}: 014400000000\n", 12923604992, 1073741824, False),
    ("Y05", f"{P}: '1600m'\n", HEAP_1600M, 201326592, False),
    ("Y07", f"{P}: 1600m\n{DL}: True\n", HEAP_1600M, 201326592, True),
    ("Y08", f'{P}: 1600m\n{DL}: "true"\n', HEAP_1600M, 201326592, True),
    ("Y10", f"{P}: 1600m\n{FR}: .5\n", 436207616, 838860800, False),
    ("Y11", f'{P}: 1600m\n{FR}: "0.5"\n', 436207616, 838860800, False),
    ("Y13", f"{P}: 1600m\n{FR}: 0\n", HEAP_1600M, 201326592, False),
    ("Y15", f"{P}: 1600m\njobmanager:\n  memory:\n    process:\n      size: 2g\n", HEAP_2G, 214748368, False),
    ("Y16", f"jobmanager:\n  memory:\n    process:\n      size: 2g\n{P}: 1600m\n", HEAP_1600M, 201326592, False),
    ("Y18", f"{P}: 1600m\n{FR}: 0.1f\n", HEAP_1600M, 201326592, False),
    ("Y19", f"{P}: 1600m\n{FR}: 1e-1\n", HEAP_1600M, 201326592, False),
    ("C21", f"{P}: 1677721600\n", HEAP_1600M, 201326592, False),
    ("C68", f"{P}: 0x100000000\n", 3462817376, 429496736, False),
    ("C69", f"{P}: 1600m\n{DL}: TRUE\n", HEAP_1600M, 201326592, True),
    ("C75", f"{P}: 1600m\n{FR}: 1e-1\n", HEAP_1600M, 201326592, False),
]


@pytest.mark.parametrize(("name", "text", "heap", "overhead", "direct"), Y_OK, ids=[v[0] for v in Y_OK])
def test_y_vectors_resolve(name: str, text: str, heap: int, overhead: int | None, direct: bool) -> None:
    memory = resolve(parse_config_yaml(text), V2)
    assert memory.heap == heap
    if overhead is not None:
        assert memory.overhead == overhead
    assert memory.direct_memory_limit_enabled is direct


Y_FAIL: list[tuple[str, str, type[FlinkMemError], Rule, str]] = [
    ("Y01", f"{P}: 1_677_721_600\n", InvalidOptionValue, Rule.INVALID_VALUE, P),
    ("Y06", f"{P}: 1677721600.0\n", InvalidOptionValue, Rule.INVALID_VALUE, P),
    ("Y09", f"{P}: 1600m\n{DL}: on\n", InvalidOptionValue, Rule.INVALID_VALUE, DL),
    ("Y12", f"{P}: 1600m\n{FR}: 1\n", MemoryConflict, Rule.OVERHEAD_RANGE_INCONSISTENT, FR),
    ("Y17", f"{P}: 99999999999999999999\n", InvalidOptionValue, Rule.INVALID_VALUE, P),
    ("Y20", f"{P}: [1600m]\n", InvalidOptionValue, Rule.INVALID_VALUE, P),
    ("Y21", f"{P}: 0x640\n", MemoryConflict, Rule.METASPACE_AND_OVERHEAD_EXCEED_PROCESS, P),
    ("C49", f"{P}: 1600m\n{DL}: yes\n", InvalidOptionValue, Rule.INVALID_VALUE, DL),
    ("C65", f"{P}: 1600m\n{FR}: .inf\n", InvalidOptionValue, Rule.INVALID_VALUE, FR),
    ("C70", f"{P}: 1600m\n{DL}: 1\n", InvalidOptionValue, Rule.INVALID_VALUE, DL),
    ("C73", f"{P}: 0\n", MemoryConflict, Rule.METASPACE_AND_OVERHEAD_EXCEED_PROCESS, P),
    ("C76", f"{P}: 1600m\n{FR}: 1e-50\n", InvalidOptionValue, Rule.INVALID_VALUE, FR),
]


@pytest.mark.parametrize(("name", "text", "error", "rule", "key"), Y_FAIL, ids=[v[0] for v in Y_FAIL])
def test_y_vectors_fail(name: str, text: str, error: type[FlinkMemError], rule: Rule, key: str) -> None:
    with pytest.raises(FlinkMemError) as info:
        resolve(parse_config_yaml(text), V2)
    assert type(info.value) is error
    assert info.value.rule is rule
    assert key in info.value.option_keys


def test_very_long_yaml_int_is_a_size_error_not_a_crash() -> None:
    # snakeyaml reads it as a BigInteger; Flink then fails to parse its text as a size (E10).
    config = parse_config_yaml(f"{P}: {'1' * 5000}\n")
    with pytest.raises(InvalidOptionValue):
        resolve(config, V2)


# ---------------------------------------------------------------------------------------------
# legacy flink-conf.yaml line parser


def test_legacy_values_are_raw_text() -> None:
    config, skipped = parse_legacy_flink_conf(f'{P}: "1600m"\n{FR}: 0.5\n{DL}: true\n')
    assert config == {P: '"1600m"', FR: "0.5", DL: "true"}
    assert skipped == []


def test_legacy_l09_comment_stripped_and_yes_rejected() -> None:
    config, _ = parse_legacy_flink_conf(f"{P}: 1600m\n{DL}: yes # c\n")
    assert config == {P: "1600m", DL: "yes"}
    with pytest.raises(InvalidOptionValue) as info:
        resolve(config, V1)
    assert DL in info.value.option_keys


def test_legacy_l10_later_line_wins() -> None:
    config, _ = parse_legacy_flink_conf(f"{P}:    2g   # c\n{P}: 1g\n")
    assert config == {P: "1g"}
    assert resolve(config, V1).heap == 469762048


def test_legacy_l11_quotes_are_kept() -> None:
    config, _ = parse_legacy_flink_conf(f'{P}: "1600m"\n')
    with pytest.raises(InvalidOptionValue) as info:
        resolve(config, V1)
    assert P in info.value.option_keys


def test_legacy_lines_flink_skips() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "   ",
            "no.colon.here",
            "no.space:after",
            "empty.value: ",
            "empty.value.comment:   # nothing",
            ": no key",
            "good: 1",
        ]
    )
    config, skipped = parse_legacy_flink_conf(text)
    assert config == {"good": "1"}
    # comment-only and blank lines are not reported; the five malformed ones are, with line numbers
    assert len(skipped) == 5
    for number, reason in zip((4, 5, 6, 7, 8), skipped, strict=True):
        assert reason.startswith(f"line {number}:")


def test_legacy_split_at_first_colon_space_and_first_hash() -> None:
    config, _ = parse_legacy_flink_conf('a: b: c\nurl: http://x:80/p\nq: "x#y"\n\tt: \tv\t\n')
    assert config == {"a": "b: c", "url": "http://x:80/p", "q": '"x', "t": "v"}


def test_legacy_crlf_and_cr_line_ends() -> None:
    config, _ = parse_legacy_flink_conf("a: 1\r\nb: 2\rc: 3\n")
    assert config == {"a": "1", "b": "2", "c": "3"}


@pytest.mark.parametrize("separator", ["\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_legacy_lines_end_only_at_cr_or_lf(separator: str) -> None:
    # Flink reads the file with BufferedReader.readLine: only \n, \r and \r\n end a line. Other
    # characters Python's str.splitlines() breaks at stay inside the value.
    config, _ = parse_legacy_flink_conf(f"{P}: 1600m{separator}x: 2g\n")
    assert config == {P: f"1600m{separator}x: 2g"}


def test_legacy_skipped_lines_are_listed_up_to_a_hundred() -> None:
    config, skipped = parse_legacy_flink_conf("good: 1\n" + "x\n" * 5000)
    assert config == {"good": "1"}
    assert len(skipped) == 101
    assert skipped[99].startswith("line 101:")
    assert skipped[100] == "4900 more lines after line 101, not listed one by one"


# ---------------------------------------------------------------------------------------------
# Hostile files: bounded size, nesting and node count, no anchors or aliases


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_the_first_anchor() -> None:
    text = _alias_bomb()
    assert len(text) < 1000  # 9^9 = 387,420,489 scalars once expanded
    with (
        cpu_deadline("the alias bomb"),
        pytest.raises(ConfigFileError, match=r"^line 1: the YAML anchor &a0 is refused"),
    ):
        parse_config_yaml(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{P}: &size 1600m\n", r"^line 1: the YAML anchor &size"),
        (f"a: 1\n{P}: *size\n", r"^line 2: the YAML alias \*size"),
        ("a:\n  b: [x, &y {c: d}]\n", r"^line 2: the YAML anchor &y"),
        ("*a\n", r"^line 1: the YAML alias \*a"),
    ],
)
def test_anchors_and_aliases_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigFileError, match=message):
        parse_config_yaml(text)


def _nested_value(depth: int) -> str:
    """A key whose value is `depth` nested flow sequences (the top-level mapping is one more)."""
    return "k: " + "[" * depth + "x" + "]" * depth + "\n"


def test_nesting_up_to_the_limit_is_read() -> None:
    assert parse_config_yaml(_nested_value(MAX_YAML_DEPTH - 1)) == {
        "k": "[" * (MAX_YAML_DEPTH - 1) + "x" + "]" * (MAX_YAML_DEPTH - 1)
    }


@pytest.mark.parametrize(
    "text",
    [
        _nested_value(MAX_YAML_DEPTH),
        "a: " + "[" * 20_000 + "\n",
        "a: " + "{a: " * 20_000 + "\n",
        "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "v: 1\n",
    ],
)
def test_deeper_nesting_is_refused_without_recursion(text: str) -> None:
    with pytest.raises(ConfigFileError, match=rf"nested more than {MAX_YAML_DEPTH} deep"):
        parse_config_yaml(text)


def test_node_count_is_bounded() -> None:
    keys = (MAX_YAML_NODES - 1) // 2  # the top-level mapping is a node too
    assert len(parse_config_yaml("".join(f"k{i}: 1\n" for i in range(keys)))) == keys
    with pytest.raises(ConfigFileError, match="more than 20,000 YAML nodes"):
        parse_config_yaml("".join(f"k{i}: 1\n" for i in range(keys)) + "one: more\n")
    with pytest.raises(ConfigFileError, match="more than 20,000 YAML nodes"):
        parse_config_yaml("k: [" + "a," * MAX_YAML_NODES + "]\n")


def test_file_size_is_bounded_for_both_formats() -> None:
    padding = "#" * (MAX_CONFIG_CHARS - len(f"{P}: 1600m\n") - 1) + "\n"
    assert parse_config_yaml(padding + f"{P}: 1600m\n") == {P: "1600m"}
    assert parse_legacy_flink_conf(padding + f"{P}: 1600m\n")[0] == {P: "1600m"}
    with pytest.raises(ConfigFileError, match="262,144 characters"):
        parse_config_yaml(padding + f"{P}: 1600m\n" + " ")
    with pytest.raises(ConfigFileError, match="262,144 characters"):
        parse_legacy_flink_conf("x" * (3 << 20))


def test_hex_and_octal_integers_are_read_up_to_4096_decimal_digits() -> None:
    # 0x followed by 3401 'f's is 16^3401 - 1, which has 4096 decimal digits; one more is too many.
    assert parse_config_yaml("k: 0x" + "f" * 3401 + "\n")["k"] == 16**3401 - 1
    assert len(str(16**3401 - 1)) == 4096
    with pytest.raises(ConfigFileError, match=r"^line 2: 'jobmanager.k': the integer 0x100000000000000000… has more"):
        parse_config_yaml("jobmanager:\n  k: 0x1" + "0" * 3402 + "\n")
    with pytest.raises(ConfigFileError, match="has more than 4,096 decimal digits"):
        parse_config_yaml("k: 0o1" + "0" * 5000 + "\n")
    # Decimal integers need no conversion: kept as their canonical text at any length.
    assert parse_config_yaml("k: +000" + "1" * 100_000 + "\n")["k"] == "1" * 100_000
    # Leading zeros do not count: snakeyaml reads 000…0016 as 16.
    assert parse_config_yaml("k: -" + "0" * 100_000 + "16\n")["k"] == -16


def test_lone_surrogates_and_nul_are_not_valid_yaml() -> None:
    for text in ("k: \ud800\n", "k: a\x00b\n", "\udfff: 1\n"):
        with pytest.raises(ConfigFileError, match=r"^not valid YAML"):
            parse_config_yaml(text)


# ---------------------------------------------------------------------------------------------
# Parsing event by event gives what composing the document and walking its nodes gave


def _composed(text: str) -> dict[str, RawValue]:
    """The former reading: compose the whole document with PyYAML, then walk its nodes."""

    def flow_text(node: yaml.Node) -> str:
        if isinstance(node, yaml.SequenceNode):
            return "[" + ", ".join(flow_text(item) for item in node.value) + "]"
        if isinstance(node, yaml.MappingNode):
            return "{" + ", ".join(f"{flow_text(k)}: {flow_text(v)}" for k, v in node.value) + "}"
        return str(node.value)

    def flatten(node: yaml.MappingNode, prefix: str, out: dict[str, RawValue]) -> None:
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigFileError(f"line {key_node.start_mark.line + 1}: configuration keys must be plain text")
            key = str(key_node.value)
            if key in seen:
                raise ConfigFileError(f"line {key_node.start_mark.line + 1}: duplicate key {prefix + key!r}")
            seen.add(key)
            if isinstance(value_node, yaml.MappingNode):
                flatten(value_node, prefix + key + ".", out)
                continue
            value: RawValue | None
            if isinstance(value_node, yaml.SequenceNode):
                value = flow_text(value_node)
            else:
                plain = value_node.style in (None, "") and value_node.tag == "tag:yaml.org,2002:str"
                value = resolve_core_scalar(str(value_node.value)) if plain else str(value_node.value)
            if value is None:
                raise ConfigFileError(
                    f"line {value_node.start_mark.line + 1}: {prefix + key!r} has no value; Flink refuses null "
                    "values, so give it a value or delete the line"
                )
            out.pop(prefix + key, None)
            out[prefix + key] = value

    try:
        root = yaml.compose(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"not valid YAML: {' '.join(str(exc).split())}") from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise ConfigFileError("the top level of a Flink configuration file must be a mapping of keys to values")
    out: dict[str, RawValue] = {}
    flatten(root, "", out)
    return out


def _outcome(parse: object, text: str) -> tuple[str, object]:
    assert callable(parse)
    try:
        config = parse(text)
    except ConfigFileError as exc:
        return "error", str(exc)
    # repr keeps -0.0 apart from 0.0 and a NaN equal to itself; the type keeps 1 apart from True.
    return "ok", [(key, type(value).__name__, repr(value)) for key, value in config.items()]


# fmt: off
_YAML_PIECES = st.sampled_from([
    "a", "b", "1", "0x1F", "0o17", "1e5", "-.5", ".inf", ".nan", "true", "null", "~", "''", '""', "'q r'",
    '"x\\ty"', " ", "  ", "\n", "\n  ", "\n    ", "\n- ", "- ", ": ", ":", ",", ", ", "[", "]", "{", "}",
    "#c", " #c", "? ", "---\n", "...\n", "!!str ", "!!int ", "! ", "|\n  ", ">\n  ", "\t", "é", "k: ",
    "\nk: ", "\nk:\n  j: ", "\r\n", "%YAML 1.1\n",
])
# fmt: on


@settings(max_examples=1000, deadline=None)
@given(st.lists(_YAML_PIECES, max_size=14).map("".join))
def test_event_parsing_matches_the_composed_document(text: str) -> None:
    assert _outcome(parse_config_yaml, text) == _outcome(_composed, text)
