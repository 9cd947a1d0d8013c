"""The reference for shell words: Python's own `shlex`, and text a fuzzer can split both ways."""

from __future__ import annotations

import shlex

from hypothesis import strategies as st

__all__ = ["SHELL_TEXT", "shlex_or_split"]

# Blanks shlex splits at and the ones it does not, quotes, escapes, NUL and non-ASCII letters.
SHELL_TEXT = st.text(alphabet=st.sampled_from(list("ab=-X1g '\"\\\t\r\n\x0b\u2028\x00é")), max_size=24)


def shlex_or_split(text: str) -> list[str]:
    """`shlex.split`, or a split at whitespace where shlex raises (what flinkmem does then)."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()
