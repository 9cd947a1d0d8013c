"""Reading Flink configuration files the way Flink itself reads them.

Flink 2.x (and 1.19+ when no `flink-conf.yaml` exists) reads `config.yaml` as standard YAML 1.2 with
the Core schema: nested maps flatten to dotted keys, scalars keep their YAML type, nulls and
duplicate keys are fatal. Flink 1.x reads `flink-conf.yaml` with a line parser that keeps every
value as raw text. PyYAML resolves scalars by YAML 1.1 rules (octal `014`, `yes` as a boolean,
`1_000` as an int), so only its parser is used here and scalars are typed by Core-schema rules.

A configuration file may come from a hostile tenant (Flink's ConfigMap `flink-config-<id>`), so
reading one is bounded in time and memory, with these documented limits where flinkmem refuses
what Flink would read:

- at most `MAX_CONFIG_CHARS` (256 KiB) of text, for both file formats. Flink reads up to 3 MiB
  (snakeyaml-engine's code point limit); its generated ConfigMaps and its default `config.yaml`
  (14 KB) are far smaller. The limit keeps the worst case of PyYAML's pure-Python parser (about
  1.3 µs per character for event-poor text) well under a second.
- no YAML anchors or aliases. Flink accepts aliases (snakeyaml-engine allows 50 to collections),
  but no Flink option needs them, and each alias can double what the text expands to: nine levels
  of nine-item aliases in 400 bytes expand to 387 million scalars. They are refused at the first
  anchor or alias, before anything is built.
- at most `MAX_YAML_DEPTH` (64) nested collections and `MAX_YAML_NODES` (20,000) scalars and
  collections. PyYAML parses about 2 characters per node at up to 18 µs a node; Flink's default
  `config.yaml` has 51 nodes. Nesting is followed with an explicit stack, never recursion.
- a hexadecimal or octal integer may not exceed `MAX_INT_DIGITS` (4,096) decimal digits: its value
  would have to be converted to decimal text (what Flink reads), which Python does in quadratic
  time. Decimal integers are kept as written at any length.

PyYAML's C parser (libyaml) is not used although it is about 20 times faster: it differs from the
pure-Python parser on inputs a tenant can write (a tab after a value, the `!` tag, the marks of
empty values and hence line numbers in messages, nesting beyond 1000, lone surrogates, which it
cannot even encode), so results would depend on whether libyaml is installed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import cast

import yaml

from flinkmem.engine.javatext import java_trim
from flinkmem.engine.options import RawValue

__all__ = [
    "MAX_CONFIG_CHARS",
    "MAX_INT_DIGITS",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "ConfigFileError",
    "check_config_size",
    "check_yaml_limits",
    "parse_config_yaml",
    "parse_legacy_flink_conf",
    "resolve_core_scalar",
]


class ConfigFileError(ValueError):
    """The file cannot be loaded; Flink would stop before resolving any memory."""


MAX_CONFIG_CHARS = 256 * 1024
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 20_000
MAX_INT_DIGITS = 4096
# Skipped lines of a legacy file reported one by one; the rest are counted.
_MAX_SKIPPED_REPORTS = 100

# Core-schema scalars. Each quantifier is followed only by characters it cannot match, so a failed
# match backtracks one step per character: linear time. No possessive groups: Debian bookworm's
# Python (3.11.2) gets them wrong ("83E" matched a float there); 3.11.7 does not.
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_INT10 = re.compile(r"[-+]?+[0-9]++")
_INT8 = re.compile(r"0o[0-7]++")
_INT16 = re.compile(r"0x[0-9a-fA-F]++")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.nan|\.NaN|\.NAN")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_INT_LIMIT = 10**MAX_INT_DIGITS
_STR_TAG = "tag:yaml.org,2002:str"


def check_config_size(text: str) -> None:
    """Refuses a configuration file longer than `MAX_CONFIG_CHARS` before any parsing."""
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigFileError(
            f"the file has {len(text):,} characters; flinkmem reads Flink configuration files of up to "
            f"{MAX_CONFIG_CHARS:,} characters (Flink's own are a few kilobytes)"
        )


def _radix_int(digits: str, radix: int, text: str) -> int:
    value = int(digits, radix)  # linear for the radixes 8 and 16, and exempt from Python's digit limit
    if value >= _INT_LIMIT:
        shown = text if len(text) <= 24 else f"{text[:20]}…"
        raise ConfigFileError(
            f"the integer {shown} has more than {MAX_INT_DIGITS:,} decimal digits, more than flinkmem reads "
            "(Flink would read it and then find it too large for any memory option)"
        )
    return value


def resolve_core_scalar(text: str) -> RawValue | None:
    """Types a plain scalar by the YAML 1.2 Core schema; None stands for null.

    ConfigFileError for a hexadecimal or octal integer beyond `MAX_INT_DIGITS` decimal digits.
    """
    if _NULL.fullmatch(text):
        return None
    if _BOOL.fullmatch(text):
        return text.lower() == "true"
    if _INT10.fullmatch(text):
        digits = text.lstrip("+-").lstrip("0") or "0"
        if len(digits) > 4000:
            # Too long for Python's int(); its Java text (what Flink parses) is the canonical form.
            return ("-" if text.startswith("-") else "") + digits
        # Converted without its leading zeros, which count towards Python's digit limit.
        return -int(digits) if text.startswith("-") else int(digits)
    if _INT8.fullmatch(text):
        return _radix_int(text[2:], 8, text)
    if _INT16.fullmatch(text):
        return _radix_int(text[2:], 16, text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


def _line(event: yaml.Event) -> int:
    """The 1-based line an event starts on (PyYAML's parser always marks its events)."""
    return event.start_mark.line + 1 if event.start_mark is not None else 0


def _alias_refused(event: yaml.NodeEvent) -> ConfigFileError:
    what = f"alias *{event.anchor}" if isinstance(event, yaml.AliasEvent) else f"anchor &{event.anchor}"
    return ConfigFileError(
        f"line {_line(event)}: the YAML {what} is refused: Flink's options need no anchors or aliases, "
        "and aliases can expand a small file into an enormous value; write the value out instead"
    )


def _too_many_nodes(event: yaml.Event, limit: int) -> ConfigFileError:
    return ConfigFileError(
        f"line {_line(event)}: the file has more than {limit:,} YAML nodes (keys, values and list items), "
        "more than flinkmem reads"
    )


def _too_deep(event: yaml.Event, limit: int) -> ConfigFileError:
    return ConfigFileError(
        f"line {_line(event)}: collections are nested more than {limit} deep, more than flinkmem reads"
    )


def check_yaml_limits(
    text: str,
    *,
    max_chars: int = MAX_CONFIG_CHARS,
    max_depth: int = MAX_YAML_DEPTH,
    max_nodes: int = MAX_YAML_NODES,
) -> None:
    """Refuses YAML text (any number of documents) that exceeds these limits or has anchors or aliases.

    For callers that hand the text to a YAML loader afterwards (`yaml.safe_load_all` recurses once
    per nesting level and shares aliased objects that later walks expand): this scans the events
    with the same pure-Python parser, in linear time and without recursion, before anything is
    built. A syntax error ends the scan quietly; the loader will report it.
    """
    if len(text) > max_chars:
        raise ConfigFileError(f"the file has {len(text):,} characters; flinkmem reads up to {max_chars:,}")
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=yaml.BaseLoader):
            if isinstance(event, yaml.AliasEvent) or (isinstance(event, yaml.NodeEvent) and event.anchor is not None):
                raise _alias_refused(event)
            if isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > max_nodes:
                    raise _too_many_nodes(event, max_nodes)
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    if depth > max_depth:
                        raise _too_deep(event, max_depth)
    except yaml.YAMLError:
        return


class _Mapping:
    """A mapping being flattened into dotted keys."""

    __slots__ = ("key", "prefix", "seen")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.seen: set[str] = set()
        self.key: str | None = None  # the key whose value comes next


class _Text:
    """A collection inside a value, turned back into text as Flink does (flow-style YAML)."""

    __slots__ = ("items", "mapping")

    def __init__(self, mapping: bool) -> None:
        self.mapping = mapping
        self.items: list[str] = []

    def text(self) -> str:
        if not self.mapping:
            return "[" + ", ".join(self.items) + "]"
        pairs = zip(self.items[::2], self.items[1::2], strict=True)
        return "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"


class _Skipped:
    """A collection in a document already known to be refused: only its end matters."""

    __slots__ = ()


_Frame = _Mapping | _Text | _Skipped


class _Flattener:
    """Builds the flattened configuration from parser events, one event at a time.

    The result is what composing the document and walking its nodes gives, in the same order:
    the first problem in document order is kept, but raised only once the whole document has
    parsed, so that a YAML syntax error anywhere takes precedence as it does for a composed tree.
    """

    def __init__(self) -> None:
        self.out: dict[str, RawValue] = {}
        self.stack: list[_Frame] = []
        self.problem: ConfigFileError | None = None
        self.nodes = 0

    def fail(self, message: str) -> None:
        if self.problem is None:
            self.problem = ConfigFileError(message)

    def node(self, event: yaml.NodeEvent) -> None:
        """Limits that hold for every node, checked as the node starts."""
        if event.anchor is not None:
            raise _alias_refused(event)
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            raise _too_many_nodes(event, MAX_YAML_NODES)

    def start(self, event: yaml.CollectionStartEvent) -> None:
        self.node(event)
        if len(self.stack) >= MAX_YAML_DEPTH:
            raise _too_deep(event, MAX_YAML_DEPTH)
        mapping = isinstance(event, yaml.MappingStartEvent)
        if not self.stack:
            if mapping:
                self.stack.append(_Mapping(""))
            else:
                self.fail("the top level of a Flink configuration file must be a mapping of keys to values")
                self.stack.append(_Skipped())
            return
        parent = self.stack[-1]
        if isinstance(parent, _Mapping):
            if parent.key is None:
                self.fail(f"line {_line(event)}: configuration keys must be plain text")
                self.stack.append(_Skipped())
            elif mapping:
                self.stack.append(_Mapping(parent.prefix + parent.key + "."))
            else:
                self.stack.append(_Text(mapping=False))
            return
        self.stack.append(_Skipped() if isinstance(parent, _Skipped) else _Text(mapping))

    def end(self) -> None:
        frame = self.stack.pop()
        if isinstance(frame, _Text):
            text = frame.text()
            self.value(text, text, 0)
        elif isinstance(frame, _Mapping) and self.stack:
            parent = self.stack[-1]
            if isinstance(parent, _Mapping):
                parent.key = None  # a nested mapping was the value: its entries are in `out` already

    def scalar(self, event: yaml.ScalarEvent) -> None:
        self.node(event)
        if not self.stack:
            self.fail("the top level of a Flink configuration file must be a mapping of keys to values")
            return
        frame = self.stack[-1]
        if isinstance(frame, _Mapping) and frame.key is None:
            self.key(frame, event)
            return
        value: RawValue | None = event.value
        if isinstance(frame, _Mapping):
            tag = _STR_TAG if event.tag in (None, "!") else event.tag
            if event.style in (None, "") and tag == _STR_TAG:
                try:
                    value = resolve_core_scalar(event.value)
                except ConfigFileError as exc:
                    full_key = frame.prefix + (frame.key or "")
                    self.fail(f"line {_line(event)}: {full_key!r}: {exc}")
                    frame.key = None
                    return
        self.value(value, event.value, _line(event))

    def key(self, frame: _Mapping, event: yaml.ScalarEvent) -> None:
        key = str(event.value)
        if key in frame.seen:
            self.fail(f"line {_line(event)}: duplicate key {frame.prefix + key!r}")
        frame.seen.add(key)
        frame.key = key

    def value(self, value: RawValue | None, text: str, line: int) -> None:
        """A finished value: flattened under its key, or kept as text in an enclosing collection."""
        if not self.stack:
            return
        frame = self.stack[-1]
        if isinstance(frame, _Text):
            frame.items.append(text)
            return
        if not isinstance(frame, _Mapping):
            return
        full_key = frame.prefix + (frame.key or "")
        frame.key = None
        if value is None:
            self.fail(
                f"line {line}: {full_key!r} has no value; Flink refuses null values, "
                "so give it a value or delete the line"
            )
            return
        if self.problem is None:
            # A later spelling of the same flattened key (flat after nested, or the reverse) wins.
            self.out.pop(full_key, None)
            self.out[full_key] = value


def _document(loader: yaml.BaseLoader) -> dict[str, RawValue] | None:
    """The events of the single document, as `Composer.get_single_node` takes them; None if empty."""
    get_event = cast("Callable[[], yaml.Event]", loader.get_event)
    check_event = cast("Callable[[type[yaml.Event]], bool]", loader.check_event)
    get_event()  # stream start
    if check_event(yaml.StreamEndEvent):
        get_event()
        return None
    get_event()  # document start
    flattener = _Flattener()
    root_mark: yaml.Mark | None = None
    while True:
        event = get_event()
        if root_mark is None:
            root_mark = cast("yaml.Mark | None", event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            raise _alias_refused(event)
        if isinstance(event, yaml.ScalarEvent):
            flattener.scalar(event)
        elif isinstance(event, yaml.CollectionStartEvent):
            flattener.start(event)
        elif isinstance(event, yaml.CollectionEndEvent):
            flattener.end()
        if not flattener.stack:
            break
    get_event()  # document end
    if not check_event(yaml.StreamEndEvent):
        event = get_event()
        raise yaml.composer.ComposerError(
            "expected a single document in the stream",
            root_mark,
            "but found another document",
            cast("yaml.Mark | None", event.start_mark),
        )
    get_event()  # stream end
    if flattener.problem is not None:
        raise flattener.problem
    return flattener.out


def parse_config_yaml(text: str) -> dict[str, RawValue]:
    """Loads a standard-YAML `config.yaml` into flattened keys with Core-schema typed values.

    Bounded: see the module's limits. Parsed event by event (PyYAML's pure-Python parser, whose
    parser and scanner keep explicit stacks), so no input reaches a recursion limit.
    """
    check_config_size(text)
    try:
        loader = yaml.BaseLoader(text)  # refuses non-printable characters (NUL, lone surrogates) at once
        try:
            document = _document(loader)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"not valid YAML: {' '.join(str(exc).split())}") from None
    return {} if document is None else document


def parse_legacy_flink_conf(text: str) -> tuple[dict[str, RawValue], list[str]]:
    """Reads a 1.x `flink-conf.yaml` line by line, as Flink's legacy parser does.

    Returns the values (all raw text, quotes kept) and the lines Flink would skip, with why (the
    first 100 one by one, then how many more). Refuses a file beyond `MAX_CONFIG_CHARS`.
    """
    check_config_size(text)
    out: dict[str, RawValue] = {}
    skipped: list[str] = []
    more_skipped = 0
    # Java's readLine ends lines only at CR, LF or CRLF; str.splitlines would also split at FF, NEL, etc.
    for number, line in enumerate(_LINE_BREAKS.split(text), start=1):
        content = java_trim(line.split("#", 1)[0])
        if not content:
            continue
        key, sep, value = content.partition(": ")
        if not sep:
            reason = "not a 'key: value' pair (a space must follow the colon)"
        else:
            key, value = java_trim(key), java_trim(value)
            if key and value:
                out[key] = value
                continue
            reason = "empty key or value"
        if len(skipped) < _MAX_SKIPPED_REPORTS:
            skipped.append(f"line {number}: {reason}")
        else:
            more_skipped += 1
    if more_skipped:
        skipped.append(f"{more_skipped} more lines after line {_skipped_line(skipped[-1])}, not listed one by one")
    return out, skipped


def _skipped_line(report: str) -> str:
    return report.split(":", 1)[0].removeprefix("line ")
