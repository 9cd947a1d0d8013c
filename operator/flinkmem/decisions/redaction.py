"""What flinkmem says back never carries a secret, and never more than a sane amount of anyone's text.

Messages quote what users wrote: option values in refusals, Java options in warnings, names in Events.
Before any message leaves flinkmem (a kubectl warning or refusal, an Event, a log line, an annotation,
the CLI's output), `redact` masks the value of every `key=value` or `key: value` whose key looks like a
credential (it contains password, passwd, secret, token, credential or key, in any letter case), and
cuts every run of text longer than `LONG_RUN` characters, saying how long it was. Both scans are
linear: words are matched possessively, so no input can make them backtrack, and a long run is only
tried where a run starts.

Messages are redacted on every answer, so the common case is kept cheap: a text in which no credential
word appears, in any case, cannot hold a key to mask, and the per-word scan is skipped. `_folded` is
what makes that test exact: `re.IGNORECASE` lets a character stand for one of the credential words'
letters exactly when its case fold is that letter, except for the dotted and dotless capital and small
I (U+0130, U+0131), which `_folded` maps to `i` as well (tests/unit/test_redaction.py checks every code
point).
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["LONG_RUN", "MASK", "MESSAGE_LIMIT", "redact", "redact_values"]

MASK = "****"
# A run of non-blank characters longer than this is cut to its first KEPT characters.
LONG_RUN = 256
KEPT = 64
# No single message flinkmem writes is longer than this (after masking and cutting).
MESSAGE_LIMIT = 8192

_WORDS = ("password", "passwd", "secret", "token", "credential", "key")
_CREDENTIAL = re.compile("|".join(_WORDS), re.IGNORECASE)
# A key (a word of letters, digits, `_`, `.`, `-`, taken whole, perhaps closing a JSON string) followed by
# `=` or `:` and its value: a quoted string or a run up to the next blank, comma, semicolon or quote.
_ASSIGNMENT = re.compile(
    r"(?<![\w.-])(?P<key>[\w.-]++)(?P<sep>[\"']?+[ \t]*+[=:][ \t]*+)(?P<value>\"[^\"]*+\"|'[^']*+'|[^\s,;'\"]++)"
)
_LONG = re.compile(rf"(?<!\S)\S{{{LONG_RUN + 1},}}")


def _folded(text: str) -> str:
    """`text` case-folded so that every credential word `_CREDENTIAL` finds in it appears literally."""
    return text.casefold().replace("\u0307", "").replace("\u0131", "i")


def _may_hold_credential(text: str) -> bool:
    folded = _folded(text)
    return any(word in folded for word in _WORDS)


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
    if len(text) > MESSAGE_LIMIT:
        return _redact(text)
    return _redact_short(text)


def _redact(text: str) -> str:
    masked = _ASSIGNMENT.sub(_mask, text) if _may_hold_credential(text) else text
    if len(masked) > LONG_RUN:
        masked = _LONG.sub(_cut, masked)
    if len(masked) > MESSAGE_LIMIT:
        masked = f"{masked[: MESSAGE_LIMIT - 40]}…({len(masked)} characters in all)"
    return masked


# A refusal flood repeats one message, and a review's message is redacted for the log and again for the
# answer; short texts are remembered (at most _REMEMBERED of them, each under MESSAGE_LIMIT characters).
_REMEMBERED = 128
_redact_short = functools.lru_cache(maxsize=_REMEMBERED)(_redact)


def redact_values(value: Any) -> Any:
    """Every string inside `value` (lists and dicts walked, keys kept) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_values(item) for item in value]
    if isinstance(value, dict):
        return {key: redact_values(item) for key, item in value.items()}
    return value
