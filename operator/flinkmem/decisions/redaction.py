"""What flinkmem says back never carries a secret, and never more than a sane amount of anyone's text.

Messages quote what users wrote: option values in refusals, Java options in warnings, names in Events.
Before any message leaves flinkmem (a kubectl warning or refusal, an Event, a log line, an annotation,
the CLI's output), `redact` masks the value of every `key=value` or `key: value` whose key looks like a
credential (it contains password, passwd, secret, token, credential or key, in any letter case), and
cuts every run of text longer than `LONG_RUN` characters, saying how long it was. Both scans are
linear: words are matched possessively, so no input can make them backtrack.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["LONG_RUN", "MASK", "MESSAGE_LIMIT", "redact", "redact_values"]

MASK = "****"
# A run of non-blank characters longer than this is cut to its first KEPT characters.
LONG_RUN = 256
KEPT = 64
# No single message flinkmem writes is longer than this (after masking and cutting).
MESSAGE_LIMIT = 8192

_CREDENTIAL = re.compile(r"password|passwd|secret|token|credential|key", re.IGNORECASE)
# A key (a word of letters, digits, `_`, `.`, `-`, taken whole, perhaps closing a JSON string) followed by
# `=` or `:` and its value: a quoted string or a run up to the next blank, comma, semicolon or quote.
_ASSIGNMENT = re.compile(
    r"(?<![\w.-])(?P<key>[\w.-]++)(?P<sep>[\"']?+[ \t]*+[=:][ \t]*+)(?P<value>\"[^\"]*+\"|'[^']*+'|[^\s,;'\"]++)"
)
_LONG = re.compile(rf"\S{{{LONG_RUN + 1},}}+")


def _mask(match: re.Match[str]) -> str:
    if not _CREDENTIAL.search(match["key"]):
        return match[0]
    value = match["value"]
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match['key']}{match['sep']}{quote}{MASK}{quote}"


def _cut(match: re.Match[str]) -> str:
    run = match[0]
    return f"{run[:KEPT]}…({len(run)} characters)"


def redact(text: str) -> str:
    """`text` with credential values masked, long runs cut, and at most MESSAGE_LIMIT characters."""
    masked = _LONG.sub(_cut, _ASSIGNMENT.sub(_mask, text))
    if len(masked) > MESSAGE_LIMIT:
        masked = f"{masked[: MESSAGE_LIMIT - 40]}…({len(masked)} characters in all)"
    return masked


def redact_values(value: Any) -> Any:
    """Every string inside `value` (lists and dicts walked, keys kept) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_values(item) for item in value]
    if isinstance(value, dict):
        return {key: redact_values(item) for key, item in value.items()}
    return value
