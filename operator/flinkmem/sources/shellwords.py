"""Shell words as `shlex.split` gives them (POSIX mode, no comments), in linear time.

Flink's start scripts hand Java options and `bash -c` command lines to a shell, so flinkmem reads them
as a shell splits them. `shlex` itself grows each token one character at a time, quadratic in the
token's length (a 128 KiB token takes a third of a second, a megabyte minutes), and a tenant chooses
those lengths: these regular expressions give the same words with no backtracking.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["BLANKS", "ShellSyntaxError", "is_plain", "iter_raw_words", "raw_words", "split", "unquote"]

# Blanks as shlex sees them: only these separate words (str.split would also split at \v, \f, NBSP, …).
BLANKS = re.compile(r"[ \t\r\n]++")

# A word is a run of unquoted characters, backslash escapes, '…' and "…" parts, up to a blank.
# Alternatives that start with different characters; inside quotes one character at a time, so an
# unclosed quote fails in linear time. Nothing follows a word in _TOKEN, so a word never backtracks.
# No possessive groups: Debian bookworm's Python (3.11.2) gets them wrong.
_WORD = r"""(?:[^ \t\r\n'"\\]+|\\.|'[^']*'|"(?:[^"\\]|\\.)*")+"""
# Each token: blanks, then a word, or else the one character no word can start with (an unclosed
# quote or a final backslash), which is where shlex raises ValueError, or else the end. As every
# position matches, no search fails (a failing search from each of n blanks would scan them all).
_TOKEN = re.compile(rf"[ \t\r\n]*+(?:({_WORD})|(.)|\Z)", re.DOTALL)
_WORD_PART = re.compile(r"""([^'"\\]++)|\\(.)|'([^']*+)'|"((?:[^"\\]++|\\.)*+)""" + '"', re.DOTALL)


def is_plain(text: str) -> bool:
    """No quotes and no backslashes: the words are the blank-separated runs, as written."""
    return "'" not in text and '"' not in text and "\\" not in text


def _part_text(part: re.Match[str]) -> str:
    """One part of a word as shlex gives it: quotes gone, escapes resolved."""
    plain, escaped, single, double = part.groups()
    if double is None:
        return plain or escaped or single or ""
    if "\\" not in double:
        return double
    # Inside double quotes a backslash escapes only a backslash or a double quote, and stays otherwise.
    return "\\".join([piece.replace('\\"', '"') for piece in double.split("\\\\")])


def unquote(word: str) -> str:
    """A word as written (from `raw_words`) as shlex gives it: quotes removed, escapes resolved."""
    if "\\" not in word:
        # Without escapes, a word with one kind of quote only loses those quote characters.
        if '"' not in word:
            return word.replace("'", "") if "'" in word else word
        if "'" not in word:
            return word.replace('"', "")
    return _WORD_PART.sub(_part_text, word)


class ShellSyntaxError(ValueError):
    """An unclosed quote or a final backslash: where shlex raises ValueError."""


def iter_raw_words(text: str) -> Iterator[str]:
    """The words of `text` as written (quotes and escapes still in), one at a time; ShellSyntaxError
    once it reaches what shlex would raise at."""
    for match in _TOKEN.finditer(text):
        word, stray = match.groups()
        if stray:
            raise ShellSyntaxError(f"unclosed quote or final backslash at character {match.start(2)}")
        if word:
            yield word


def raw_words(text: str) -> list[str] | None:
    """The words of `text` as written (quotes and escapes still in), or None where shlex would raise."""
    try:
        return list(iter_raw_words(text))
    except ShellSyntaxError:
        return None


def split(text: str) -> list[str]:
    """`shlex.split(text)`, or `text.split()` where shlex would raise (an unclosed quote, a final `\\`)."""
    if is_plain(text):
        return [word for word in BLANKS.split(text) if word]
    words = raw_words(text)
    return text.split() if words is None else [unquote(word) for word in words]
