"""The metric names a PromQL expression reads, for checking dashboards and rules against what is exported.

A small lexer, not a parser: it drops string literals, label matchers (``{...}``), ranges and
offsets (``[...]``) and grouping clauses (``by (...)``, ``on (...)``...), and keeps every remaining
identifier that is not a function or aggregation (followed by ``(``), a keyword or a number. That is
exactly the set of metric names for the expressions flinkmem ships (selectors with a metric name,
functions, aggregations, binary operators); the HA suite also runs them through Prometheus itself.
"""

from __future__ import annotations

import re

__all__ = ["metric_names"]

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*|\$\w+|[0-9.]+[eE]?[0-9]*|\S")


def _balanced(text: str, start: int, open_: str, close: str) -> int:
    """The index just after the bracket that closes the one at ``start``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError(f"unbalanced {open_!r} in {text!r}")


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    text = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", text)
    # Label matchers and ranges go first (their content is not metric names).
    out = []
    i = 0
    while i < len(text):
        if text[i] in "{[":
            close = "}" if text[i] == "{" else "]"
            i = _balanced(text, i, text[i], close)
            out.append(" ")
        else:
            out.append(text[i])
            i += 1
    text = "".join(out)
    tokens = _TOKEN.findall(text)
    names: set[str] = set()
    skip_group = False
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if skip_group:
            if token == ")":
                skip_group = False
            continue
        if token in GROUPING and following == "(":
            skip_group = True
            continue
        if (
            not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", token)
            or token in KEYWORDS
            or following == "("
            or following in ("by", "without")
        ):
            continue
        names.add(token)
    return names
