"""Which Flink versions the differential suites run, and how many generated cases each one gets.

Every line flinkmem supports (`flinkmem.engine.lines.LINES`) runs with the jars of its newest patch
(`flinkdist.SUPPORTED_LINE_VERSIONS`): the spec vectors, the probes aimed at what differs between
lines (`probes.py`) and FLINKMEM_LINE_CASES (default 2000) generated cases per role. The versions
of the whole suite (`flinkdist.FLINK_VERSIONS`: 1.20.3 and 2.3.0) get the full set, FLINKMEM_DIFF_CASES
(default 6000) per role. Patch releases within a line answer alike (`patches.py`), so one patch
stands for its line.
"""

from __future__ import annotations

import os
from typing import Final

from flinkmem.engine import FlinkVersion
from flinkmem.engine.lines import FlinkLine, line_of
from tests.support.flinkdist import FLINK_VERSIONS, SUPPORTED_LINE_VERSIONS

__all__ = ["DEFAULT_CASES", "FULL_CASES", "LINE_CASES", "VERSIONS", "at_least", "cases_for", "flink_line"]

DEFAULT_CASES: Final = 6000
FULL_CASES: Final = int(os.environ.get("FLINKMEM_DIFF_CASES", str(DEFAULT_CASES)))
LINE_CASES: Final = int(os.environ.get("FLINKMEM_LINE_CASES", "2000"))


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


VERSIONS: Final = tuple(sorted({*FLINK_VERSIONS, *SUPPORTED_LINE_VERSIONS}, key=_key))


def cases_for(version: str) -> int:
    """Generated cases per role for `version`: the full set for the suite's versions."""
    return FULL_CASES if version in FLINK_VERSIONS else LINE_CASES


def at_least(count: int, version: str) -> int:
    """A coverage threshold stated for 6000 generated cases, scaled to `version`'s count."""
    return max(1, count * cases_for(version) // DEFAULT_CASES)


def flink_line(version: str) -> FlinkLine:
    """The rules flinkmem resolves `version` (`1.17.2`) with."""
    return line_of(FlinkVersion.parse(version))
