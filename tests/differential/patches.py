"""The first patch of each Flink line against its newest: does the patch release ever matter?

    python -m tests.differential.patches [--cases N] [--pair OLDER NEWER ...]     (make lines-patches)

Runs the reference harness of the first patch PyPI serves of each line (`flinkdist.FIRST_PATCHES`)
and of the newest patch of the same line on the same records (the vectors, the probes and N
generated records per role) and compares the two answers whole: every field, errors and Flink's
native pods included. flinkmem names a line, not a patch, so any difference would be a patch that
answers differently from its line; none was found (docs/flink-lines.md). Run it again when PyPI
serves a new patch (add it to `flinkdist`), or give pairs with `--pair`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from tests.differential import cases, flinkref, tmcases
from tests.differential.probes import jobmanager_probes, taskmanager_probes
from tests.differential.tmvectors import scenario_records, vector_records
from tests.differential.vectors import Record, spec_vectors, version_line
from tests.support import flinkdist

__all__ = ["HARNESS_ONLY", "compare_patches", "main", "records_for"]

DEFAULT_CASES: Final = 3000
DEFAULT_SEED: Final = 20260526
# Answers of the harness that describe the run rather than Flink's result.
HARNESS_ONLY: Final = frozenset({"launcherAgrees"})


def records_for(version: str, count: int, seed: int) -> list[Record]:
    """Vectors, probes and `count` generated records per role, without a flinkVersion of their own."""
    records = spec_vectors() + cases.generate(version, count, seed) + jobmanager_probes()
    records += vector_records() + scenario_records() + tmcases.generate(version, count, seed) + taskmanager_probes()
    return [{key: value for key, value in record.items() if key != "flinkVersion"} for record in records]


def _group(record: Record) -> str:
    role = "taskmanager" if record.get("role") == "taskmanager" else "jobmanager"
    return f"{role}/{record.get('mode') or 'native'}"


def compare_patches(first: str, newest: str, count: int, seed: int) -> dict[str, Any]:
    """The harness of `first` against that of `newest` on the same records (answers compared whole)."""
    records = records_for(newest, count, seed)
    older = flinkref.run_reference(first, records, verify=True)
    newer = flinkref.run_reference(newest, records, verify=True)
    differing: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    for record, a, b in zip(records, older, newer, strict=True):
        keys = sorted(key for key in set(a) | set(b) if key not in HARNESS_ONLY and a.get(key) != b.get(key))
        if keys:
            differing[f"{_group(record)}: {','.join(keys)}"] += 1
            if len(examples) < 5:
                examples.append({"record": record, first: a, newest: b})
    return {"first": first, "newest": newest, "cases": len(records), "differing": dict(differing), "examples": examples}


def first_and_newest() -> list[tuple[str, str]]:
    newest = {version_line(version): version for version in flinkdist.LINE_VERSIONS}
    return [(first, newest[version_line(first)]) for first in flinkdist.FIRST_PATCHES]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential.patches", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES, help="generated records per role")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--pair", nargs=2, action="append", metavar=("OLDER", "NEWER"), help="instead of every line")
    args = parser.parse_args(argv)
    pairs = [(older, newer) for older, newer in args.pair or ()] or first_and_newest()
    differing = 0
    for first, newest in pairs:
        result = compare_patches(first, newest, args.cases, args.seed)
        print(json.dumps(result), flush=True)
        differing += bool(result["differing"])
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
