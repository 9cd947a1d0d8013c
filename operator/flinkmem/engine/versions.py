"""Flink version lines and deployment modes, the two inputs besides the configuration itself.

Both come from tenants (annotations, image tags, FlinkDeployment fields), so they are read in linear
time and quoted in messages only up to a bounded length; a version text longer than 64 characters
(blanks included) names no Flink release and is refused without being parsed, so that no cache of
parsed versions keeps a long text.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from flinkmem.engine.errors import UnsupportedInput

__all__ = ["DeploymentMode", "FlinkVersion"]


class DeploymentMode(enum.Enum):
    """How Flink runs the process: decides how 1.x reads the legacy heap keys and, for a TaskManager,
    whether the native resource manager sizes its pod."""

    NATIVE = "native"
    STANDALONE = "standalone"

    @classmethod
    def parse(cls, text: str | None) -> DeploymentMode:
        if text is None or text == "":
            return cls.NATIVE
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise UnsupportedInput(f"unknown deployment mode {_shown(text)}; use 'native' or 'standalone'") from None


# Linear: each quantifier is followed by characters it cannot match. No possessive groups (Debian
# bookworm's Python 3.11.2 gets them wrong). Only version texts up to this length are parsed.
_VERSION = re.compile(r"v?(\d+)[._](\d+|x)(?:[._]\d+)?", re.IGNORECASE)
_MAX_VERSION_CHARS = 64
# Quoted in messages up to this many characters.
_SHOWN_CHARS = 64


def _shown(text: str) -> str:
    """`repr(text)`, cut short for a long text (which then names its length)."""
    if len(text) <= _SHOWN_CHARS:
        return repr(text)
    return f"{text[:_SHOWN_CHARS]!r}… ({len(text):,} characters)"


@dataclass(frozen=True, order=True)
class FlinkVersion:
    """A Flink release line such as 1.20 or 2.3 (minor None for `v2_x`-style "the newest 2.x")."""

    major: int
    minor: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> FlinkVersion:
        """Reads `2.3`, `2.3.0`, `v1_20`, `v2_x`, `1.20.3`; None means the newest verified line.

        Only the syntax is checked: whether flinkmem supports the line is `engine.lines.support_of`.
        """
        if text is None or text == "":
            return LATEST
        # Measured before stripping: a padded text is refused too, so no cache keeps a long one.
        match = _VERSION.fullmatch(text.strip()) if len(text) <= _MAX_VERSION_CHARS else None
        if not match:
            raise UnsupportedInput(
                f"unknown Flink version {_shown(text)}; use a release line like '1.20', '2.3' or 'v1_20'"
            )
        major = int(match.group(1))
        minor = None if match.group(2).lower() == "x" else int(match.group(2))
        return cls(major, minor)

    def __str__(self) -> str:
        return f"{self.major}.{'x' if self.minor is None else self.minor}"


LATEST = FlinkVersion(2, 3)
