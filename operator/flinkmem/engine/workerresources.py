"""The non-memory part of a TaskManager spec: CPU cores, task slots and extended resources.

Flink reads them after the memory layout, in this order: the CPU (`taskmanager.cpu.cores`, else a
launcher's fallback, else the slot count; refused when not positive, then truncated to 8 decimals
from Flink 1.14),
the slot count, and the extended resources named by `external-resources` with a positive
`external-resource.<name>.amount` (a YAML sequence first from Flink 1.19, `engine.lines`).

Lists are read in linear time without recursion, however they nest. A list longer than
`MAX_LIST_CHARS` (4,096 characters) is refused with an invalid-value error naming the option: Flink
reads any length, but an extended-resource list names a handful of resources, and every name costs
a Java `String.hashCode` and a lookup (the native fast path leaves longer lists to this code).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from decimal import ROUND_DOWN, Context, Decimal

from flinkmem.engine.errors import InvalidOptionValue, MemoryConflict, OptionValue, Rule
from flinkmem.engine.javamap import hash_set_order, hashmap_order
from flinkmem.engine.javatext import java_double_to_string, java_trim
from flinkmem.engine.options import Config, DoubleOption, IntOption, LongOption, java_text

__all__ = [
    "CPU_CORES",
    "EXTERNAL_RESOURCES",
    "KUBERNETES_CPU",
    "MAX_LIST_CHARS",
    "SLOTS",
    "amount_key",
    "kubernetes_cpu_option",
    "parse_string_list",
    "read_cpu",
    "read_external_resources",
    "resource_amount",
]

MAX_LIST_CHARS = 4096

CPU_CORES = DoubleOption("taskmanager.cpu.cores", -1.0, example="2")
SLOTS = IntOption("taskmanager.numberOfTaskSlots", 1, fix="write a whole number of slots such as 2")
# The native resource manager's CPU option as the newest lines name it (`engine.lines` has each line's).
KUBERNETES_CPU = DoubleOption("kubernetes.taskmanager.cpu.amount", -1.0, ("kubernetes.taskmanager.cpu",), "2")
EXTERNAL_RESOURCES = "external-resources"
_NO_RESOURCES = "none"

# Resource values keep 8 decimals from Flink 1.14, cut toward zero (Flink's Resource.MAX_VALUE_SCALE).
CPU_DECIMALS = 8
# Wide enough for every double, so that the quantization itself never rounds.
_WIDE = Context(prec=400)


def amount_key(name: str) -> str:
    return f"external-resource.{name}.amount"


@functools.cache
def kubernetes_cpu_option(keys: tuple[str, ...]) -> DoubleOption:
    """The native resource manager's CPU option of a line: its key, then its deprecated keys."""
    return DoubleOption(keys[0], -1.0, keys[1:], "2")


def _cpu_source(config: Config, fallback: float, kubernetes_cpu: DoubleOption) -> tuple[float, str]:
    if CPU_CORES.present(config):
        return CPU_CORES.read(config), CPU_CORES.key
    if fallback > 0:
        found = kubernetes_cpu.lookup(config)
        return fallback, found[0] if found is not None else kubernetes_cpu.key
    return float(SLOTS.read(config)), SLOTS.key


def _shown(value: float) -> str:
    return java_double_to_string(value)


def read_cpu(
    config: Config,
    fallback: float = -1.0,
    kubernetes_cpu: DoubleOption = KUBERNETES_CPU,
    decimals: int | None = CPU_DECIMALS,
) -> float:
    """The TaskManager's CPU cores as Flink fixes them (`TaskExecutorProcessUtils.getCpuCoresWithFallback`).

    `fallback` is a launcher's default (native Kubernetes: the value of `kubernetes_cpu`), used only
    when positive and `taskmanager.cpu.cores` is unset. The value keeps `decimals` decimals (None: the
    whole double, as before Flink 1.14).
    """
    value, source = _cpu_source(config, fallback, kubernetes_cpu)
    if value <= 0:
        if source == SLOTS.key:
            problem = (
                f"The TaskManager's CPU cores default to {SLOTS.key}, which is {int(value)}; "
                "Flink needs a positive number of CPU cores."
            )
            fix = f"set {SLOTS.key} to 1 or more (or {CPU_CORES.key} to a positive number such as 2)"
        else:
            problem = f"{source} is {_shown(value)}; Flink needs a positive number of CPU cores."
            fix = f"set {source} to a positive number such as 2"
        raise MemoryConflict(Rule.CPU_CORES_NOT_POSITIVE, problem, fix, (OptionValue(source, _shown(value)),))
    if math.isnan(value) or math.isinf(value):
        found = CPU_CORES.lookup(config) if source == CPU_CORES.key else kubernetes_cpu.lookup(config)
        raw = java_text(found[1]) if found is not None else _shown(value)
        raise InvalidOptionValue(
            Rule.INVALID_VALUE,
            f"{source} has the value {raw!r}, which Flink cannot use as CPU cores: it is not a finite number.",
            f"set {source} to a positive number such as 2",
            (OptionValue(source, raw),),
        )
    return value if decimals is None else truncate_cpu(value, decimals)


def truncate_cpu(value: float, decimals: int = CPU_DECIMALS) -> float:
    """`CPUResource(value)` read back as a double: `Double.toString`'s decimal, cut to `decimals` decimals."""
    exact = Decimal(java_double_to_string(value))
    return float(exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN, context=_WIDE))


def check_truncated_cpu(
    cpu: float, config: Config, fallback: float, kubernetes_cpu: DoubleOption = KUBERNETES_CPU
) -> None:
    """The native resource manager writes the truncated CPU back and reads it again; 0 is refused then."""
    if cpu > 0:
        return
    _, source = _cpu_source(config, fallback, kubernetes_cpu)
    found = CPU_CORES.lookup(config) if source == CPU_CORES.key else kubernetes_cpu.lookup(config)
    raw = java_text(found[1]) if found is not None else "?"
    raise MemoryConflict(
        Rule.CPU_CORES_NOT_POSITIVE,
        f"{source} is {raw}, which Flink cuts to 0 CPU cores at 8 decimals; native pods need more than 0.",
        f"set {source} to at least 0.00000001, for example 1",
        (OptionValue(source, raw),),
    )


# --- extended resources ------------------------------------------------------------------------


_JAVA_NOT_WHITESPACE = frozenset("\u00a0\u2007\u202f")


def _java_is_whitespace(char: str) -> bool:
    """`Character.isWhitespace`: ASCII separators and Unicode spaces, but not the no-break ones."""
    if char in " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f":
        return True
    return unicodedata.category(char) in ("Zs", "Zl", "Zp") and char not in _JAVA_NOT_WHITESPACE


class _ListSyntaxError(ValueError):
    pass


class _ListTooLong(_ListSyntaxError):
    """The list text is longer than `MAX_LIST_CHARS`."""


def _consume_quoted(text: str, quote: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            if i + 1 < len(text) and text[i + 1] == quote:
                out.append(char)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise _ListSyntaxError("a quote is not closed")


def _split_escaped(text: str, delimiter: str = ";") -> list[str]:
    """Flink's legacy list syntax (`StructuredOptionsSplitter`): `;`-separated, `'` or `"` quoting."""
    tokens: list[tuple[str, str]] = []  # (kind, text): kind is "quoted", "plain" or "delimiter"
    i = 0
    while i < len(text):
        char = text[i]
        if char in "'\"":
            value, i = _consume_quoted(text, char, i)
            tokens.append(("quoted", value))
            continue
        if char == delimiter:
            tokens.append(("delimiter", char))
        elif not _java_is_whitespace(char):
            end = text.find(delimiter, i)
            end = len(text) if end < 0 else end
            tokens.append(("plain", java_trim(text[i:end])))
            i = end
            continue
        i += 1
    items: list[str] = []
    for index, (kind, value) in enumerate(tokens):
        following = tokens[index + 1][0] if index + 1 < len(tokens) else None
        if kind == "quoted":
            if following is not None and following != "delimiter":
                raise _ListSyntaxError("a quoted item is followed by more text")
            items.append(value)
        elif kind == "plain":
            items.append(value)
        elif following == "delimiter":
            items.append("")
    return items


# Plain YAML scalars in a flow sequence: no flow indicators inside, no indicator first, no ": " or " #".
_YAML_FLOW_CHARS = frozenset('[]{},"')
_YAML_FIRST = frozenset("&*!|>%@`?#'\"")
_YAML_ESCAPES = {"\\": "\\", '"': '"', "/": "/", "t": "\t", "n": "\n", "r": "\r"}
# Each quantifier followed only by characters it cannot match: linear. No possessive groups (as in
# engine.configfile: Debian bookworm's Python 3.11.2 gets them wrong).
_YAML_INT = re.compile(r"([-+]?+)([0-9]++)")
_YAML_OCTAL = re.compile(r"0o[0-7]++")
_YAML_HEX = re.compile(r"0x[0-9a-fA-F]++")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_YAML_NULL = re.compile(r"null|Null|NULL|~|")
# Scalars Flink does not turn into a name (its YAML reading fails and it splits the text instead).
_YAML_NOT_A_NAME = re.compile(r"\.(?:nan|NaN|NAN)")
_FLOW_BLANKS = " \t\n\r"
_PLAIN_END = re.compile(r"[,\]]")


class _NotAList(ValueError):
    """The text is no YAML sequence Flink would convert; Flink then splits it the legacy way."""


def _yaml_scalar(text: str, nested: bool = False) -> str:
    """A plain YAML 1.2 (core schema) scalar as the string Flink makes of it (`Object.toString`).

    A null item of the list itself fails Flink's conversion (the legacy syntax then applies); inside
    a nested list it prints as `null`.
    """
    if _YAML_NULL.fullmatch(text):
        if nested:
            return "null"
        raise _NotAList(text)
    plain = not (set(text) & _YAML_FLOW_CHARS or text[0] in _YAML_FIRST or ": " in text or " #" in text)
    plain = plain and text != "-" and not text.startswith("- ")
    if not plain or text.endswith(":") or _YAML_NOT_A_NAME.fullmatch(text):
        raise _NotAList(text)
    integer = _YAML_INT.fullmatch(text)
    if integer:
        # str(int(text)) without converting (Python refuses more than 4300 digits): no "+", no
        # leading zeros, no sign on zero.
        sign, digits = integer.groups()
        digits = digits.lstrip("0") or "0"
        return "-" + digits if sign == "-" and digits != "0" else digits
    if _YAML_OCTAL.fullmatch(text):
        return java_text(int(text[2:], 8))
    if _YAML_HEX.fullmatch(text):
        return java_text(int(text[2:], 16))
    if _YAML_FLOAT.fullmatch(text):
        return java_double_to_string(float(text))
    return text


def _skip_blanks(text: str, at: int) -> int:
    while at < len(text) and text[at] in _FLOW_BLANKS:
        at += 1
    return at


def _flow_scalar(text: str, at: int, nested: bool) -> tuple[str, int]:
    """The quoted or plain item starting at `text[at]`, and the index after it."""
    char = text[at]
    if char == "'":
        end = at + 1
        while True:
            end = text.find("'", end)
            if end < 0:
                raise _NotAList(text)
            if text[end + 1 : end + 2] != "'":
                break
            end += 2
        return text[at + 1 : end].replace("''", "'"), end + 1
    if char == '"':
        return _double_quoted(text, at)
    found = _PLAIN_END.search(text, at)
    end = found.start() if found else len(text)
    scalar = text[at:end].strip()
    if not scalar:
        raise _NotAList(text)
    return _yaml_scalar(scalar, nested), end


def _flow_items(text: str, start: int) -> tuple[list[str], int]:
    """The items of the flow sequence opening at `text[start]` and the index after its `]`.

    Nested sequences become items in Java's `List.toString` form. An explicit stack, not recursion:
    nesting depth is bounded only by the text.
    """
    stack: list[list[str]] = [[]]
    at = start + 1
    while True:
        at = _skip_blanks(text, at)
        if at >= len(text):
            raise _NotAList(text)
        if text[at] == "[":
            stack.append([])
            at += 1
            continue
        if text[at] != "]" or stack[-1]:
            item, at = _flow_scalar(text, at, nested=len(stack) > 1)
            stack[-1].append(item)
            at, closing = _after_item(text, _skip_blanks(text, at))
            if not closing:
                continue
        # text[at] is a "]": close sequences for as long as "]" follow.
        while True:
            closed = stack.pop()
            at += 1
            if not stack:
                return closed, at
            stack[-1].append("[" + ", ".join(closed) + "]")  # Java's List.toString
            at, closing = _after_item(text, _skip_blanks(text, at))
            if not closing:
                break


def _after_item(text: str, at: int) -> tuple[int, bool]:
    """After an item: the index of the `]` that closes the sequence (directly or after YAML's
    trailing comma) and True, or the index of the next item after a comma and False; anything else
    is no flow sequence."""
    if at < len(text) and text[at] == ",":
        following = _skip_blanks(text, at + 1)
        return following, following < len(text) and text[following] == "]"
    if at < len(text) and text[at] == "]":
        return at, True
    raise _NotAList(text)


def _double_quoted(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    at = start + 1
    while at < len(text):
        char = text[at]
        if char == '"':
            return "".join(out), at + 1
        if char == "\\":
            escaped = _YAML_ESCAPES.get(text[at + 1 : at + 2])
            if escaped is None:
                raise _NotAList(text)
            out.append(escaped)
            at += 2
            continue
        out.append(char)
        at += 1
    raise _NotAList(text)


def _block_item(item: str) -> str:
    """One `- item` of a block sequence: a scalar, or nested sequences as Java's List.toString."""
    depth = 0
    while item == "-" or item.startswith("- "):
        depth += 1
        item = item[1:].strip()
    if item.startswith("["):
        nested, end = _flow_items(item, 0)
        if end != len(item):
            raise _NotAList(item)
        inner = "[" + ", ".join(nested) + "]"
    else:
        inner = _yaml_scalar(item, nested=depth > 0)
    return "[" * depth + inner + "]" * depth


def _yaml_list(text: str) -> list[str] | None:
    """The items of a YAML sequence (`[a, 'b']`, `- a`), or None if `text` is none Flink would take."""
    stripped = text.strip()
    if stripped.startswith("---"):
        stripped = stripped[3:].strip()
    try:
        if stripped.startswith("["):
            items, end = _flow_items(stripped, 0)
            return items if end == len(stripped) else None
        lines = [line.strip() for line in stripped.split("\n") if line.strip()]
        if lines and all(line == "-" or line.startswith("- ") for line in lines):
            return [_block_item(line[1:].strip()) for line in lines]
    except _NotAList:
        return None
    return None


def parse_string_list(text: str, yaml_first: bool = True) -> list[str]:
    """A list option's items: a YAML sequence if the text is one (and `yaml_first`), else Flink's
    `;`-separated syntax (the only one before Flink 1.19).

    A text longer than `MAX_LIST_CHARS` is refused (`_ListTooLong`) before it is read.
    """
    if len(text) > MAX_LIST_CHARS:
        raise _ListTooLong(f"the list has {len(text):,} characters; flinkmem reads lists of up to {MAX_LIST_CHARS:,}")
    items = _yaml_list(text) if yaml_first else None
    if items is not None:
        return items
    return _split_escaped(text)


def read_external_resources(config: Config, yaml_lists: bool = True) -> tuple[tuple[str, int], ...]:
    """The extended resources with a positive amount, in the order Flink iterates them; `yaml_lists`
    says whether the line reads `external-resources` as a YAML sequence first (`FlinkLine.yaml_lists`)."""
    raw = config.get(EXTERNAL_RESOURCES)
    if raw is None:
        return ()
    text = java_text(raw)
    if text == _NO_RESOURCES:
        return ()
    try:
        names = parse_string_list(text, yaml_lists)
    except _ListTooLong:
        raise InvalidOptionValue(
            Rule.INVALID_VALUE,
            f"{EXTERNAL_RESOURCES} has {len(text):,} characters, more than the {MAX_LIST_CHARS:,} flinkmem reads "
            "in a list of extended resources.",
            f"list only the resources the TaskManagers have, for example 'gpu;fpga', or set it to '{_NO_RESOURCES}'",
            (OptionValue(EXTERNAL_RESOURCES, f"{text[:64]}… ({len(text):,} characters)"),),
        ) from None
    except _ListSyntaxError as exc:
        raise InvalidOptionValue(
            Rule.INVALID_VALUE,
            f"{EXTERNAL_RESOURCES} has the value {text!r}, which Flink cannot read as a list: {exc}.",
            f"list the resource names separated by ';', for example 'gpu;fpga', or set it to '{_NO_RESOURCES}'",
            (OptionValue(EXTERNAL_RESOURCES, text),),
        ) from None
    kept: list[str] = []
    amounts: dict[str, int] = {}
    for name in hash_set_order(names):
        amount = LongOption(amount_key(name), "write a whole number of units such as 1").read(config)
        if amount is not None and amount > 0:
            kept.append(name)
            amounts[name] = resource_amount(amount)
    return tuple((name, amounts[name]) for name in hashmap_order(kept))


def resource_amount(amount: int) -> int:
    """The amount as Flink hands it on: through a double, cut to 8 decimals, then a wrapping `longValue()`.

    Below 2^53 that is the amount itself; `9223372036854775807` comes out as `-9223372036854775616`.
    """
    as_double = Decimal(java_double_to_string(float(amount)))
    whole = int(as_double)
    return (whole + (1 << 63)) % (1 << 64) - (1 << 63)
