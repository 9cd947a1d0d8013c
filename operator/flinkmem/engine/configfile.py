"""Reading Flink configuration files the way Flink itself reads them.

Flink 2.x (and 1.19+ when no `flink-conf.yaml` exists) reads `config.yaml` as standard YAML 1.2 with
the Core schema: nested maps flatten to dotted keys, scalars keep their YAML type, nulls and
duplicate keys are fatal. Flink 1.x reads `flink-conf.yaml` with a line parser that keeps every
value as raw text. PyYAML resolves scalars by YAML 1.1 rules (octal `014`, `yes` as a boolean,
`1_000` as an int), so only its parser is used here and scalars are typed by Core-schema rules.
"""

from __future__ import annotations

import math
import re

import yaml

from flinkmem.engine.javatext import java_trim
from flinkmem.engine.options import RawValue

__all__ = ["ConfigFileError", "parse_config_yaml", "parse_legacy_flink_conf", "resolve_core_scalar"]


class ConfigFileError(ValueError):
    """The file cannot be loaded; Flink would stop before resolving any memory."""


_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_INT10 = re.compile(r"[-+]?[0-9]+")
_INT8 = re.compile(r"0o[0-7]+")
_INT16 = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.nan|\.NaN|\.NAN")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


def resolve_core_scalar(text: str) -> RawValue | None:
    """Types a plain scalar by the YAML 1.2 Core schema; None stands for null."""
    if _NULL.fullmatch(text):
        return None
    if _BOOL.fullmatch(text):
        return text.lower() == "true"
    if _INT10.fullmatch(text):
        digits = text.lstrip("+-").lstrip("0") or "0"
        if len(digits) > 4000:
            # Too long for Python's int(); its Java text (what Flink parses) is the canonical form.
            return ("-" if text.startswith("-") else "") + digits
        return int(text, 10)
    if _INT8.fullmatch(text):
        return int(text[2:], 8)
    if _INT16.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


def _flow_text(node: yaml.Node) -> str:
    """A collection value as Flink turns it back into text (flow-style YAML)."""
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    if isinstance(node, yaml.SequenceNode):
        return "[" + ", ".join(_flow_text(item) for item in node.value) + "]"
    if isinstance(node, yaml.MappingNode):
        return "{" + ", ".join(f"{_flow_text(k)}: {_flow_text(v)}" for k, v in node.value) + "}"
    return ""


def _flatten(node: yaml.MappingNode, prefix: str, out: dict[str, RawValue]) -> None:
    seen: set[str] = set()
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigFileError(f"line {key_node.start_mark.line + 1}: configuration keys must be plain text")
        key = str(key_node.value)
        if key in seen:
            raise ConfigFileError(f"line {key_node.start_mark.line + 1}: duplicate key {prefix + key!r}")
        seen.add(key)
        full_key = prefix + key
        if isinstance(value_node, yaml.MappingNode):
            _flatten(value_node, full_key + ".", out)
            continue
        if isinstance(value_node, yaml.SequenceNode):
            value: RawValue | None = _flow_text(value_node)
        elif isinstance(value_node, yaml.ScalarNode):
            plain = value_node.style in (None, "") and value_node.tag == "tag:yaml.org,2002:str"
            value = resolve_core_scalar(str(value_node.value)) if plain else str(value_node.value)
        else:
            value = None
        if value is None:
            raise ConfigFileError(
                f"line {value_node.start_mark.line + 1}: {full_key!r} has no value; Flink refuses null values, "
                "so give it a value or delete the line"
            )
        # A later spelling of the same flattened key (flat after nested, or the reverse) wins.
        out.pop(full_key, None)
        out[full_key] = value


def parse_config_yaml(text: str) -> dict[str, RawValue]:
    """Loads a standard-YAML `config.yaml` into flattened keys with Core-schema typed values."""
    try:
        root = yaml.compose(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"not valid YAML: {' '.join(str(exc).split())}") from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise ConfigFileError("the top level of a Flink configuration file must be a mapping of keys to values")
    out: dict[str, RawValue] = {}
    _flatten(root, "", out)
    return out


def parse_legacy_flink_conf(text: str) -> tuple[dict[str, RawValue], list[str]]:
    """Reads a 1.x `flink-conf.yaml` line by line, as Flink's legacy parser does.

    Returns the values (all raw text, quotes kept) and the lines Flink would skip, with why.
    """
    out: dict[str, RawValue] = {}
    skipped: list[str] = []
    # Java's readLine ends lines only at CR, LF or CRLF; str.splitlines would also split at FF, NEL, etc.
    for number, line in enumerate(_LINE_BREAKS.split(text), start=1):
        content = java_trim(line.split("#", 1)[0])
        if not content:
            continue
        key, sep, value = content.partition(": ")
        if not sep:
            skipped.append(f"line {number}: not a 'key: value' pair (a space must follow the colon)")
            continue
        key, value = java_trim(key), java_trim(value)
        if not key or not value:
            skipped.append(f"line {number}: empty key or value")
            continue
        out[key] = value
    return out, skipped
