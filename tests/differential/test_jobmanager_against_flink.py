"""flinkmem's JobManagers against real Flink: the same configurations through both, 100% agreement.

Per Flink version, for every line flinkmem supports (`lines.py`: 1.13 to 2.3, the newest patch of
each): every verified vector (see vectors.py), the JobManager probes (probes.py) and seeded random
configurations (cases.py; 6000 for 1.20.3 and 2.3.0, 2000 for the other lines) go once through the
reference harness (one JVM, real Flink classes) and once through `flinkmem resolve --batch
--flink-version <v>` in a subprocess. Compared exactly: validity, every byte field, the direct-memory
limit, the JVM flag string and the dynamic-config string. The JobManager pod's memory request and
limit (native Kubernetes; the limit factor exists from 1.15) and the presence of the low-heap warning
are compared in their own tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.differential import flinkref
from tests.differential.cases import Record, generate, spec_vectors
from tests.differential.lines import VERSIONS, at_least, cases_for, flink_line
from tests.differential.probes import jobmanager_probes
from tests.differential.vectors import ALL_KEYS, FAILURE_TEXT

pytestmark = pytest.mark.differential

SEED = int(os.environ.get("FLINKMEM_DIFF_SEED", "20260526"))
COMPARED_FIELDS = (
    "valid",
    "totalProcessMemory",
    "totalFlinkMemory",
    "jvmHeap",
    "offHeap",
    "jvmMetaspace",
    "jvmOverhead",
    "jvmDirectMemory",
    "jvmArgs",
    "dynamicConfigs",
)
SHOWN_MISMATCHES = 5


def flinkmem_command(version: str) -> list[str]:
    """`flinkmem resolve --batch` of the environment running the tests (console script if installed)."""
    script = Path(sys.executable).parent / "flinkmem"
    base = [str(script)] if script.is_file() else [sys.executable, "-m", "flinkmem"]
    return [*base, "resolve", "--batch", "--flink-version", version]


def run_flinkmem(version: str, records: Sequence[Record]) -> list[dict[str, Any]]:
    """flinkmem's batch answers for `records`, fed from a file as a batch job would be."""
    with tempfile.TemporaryFile() as batch:
        batch.writelines(json.dumps(record).encode() + b"\n" for record in records)
        batch.seek(0)
        completed = subprocess.run(flinkmem_command(version), stdin=batch, capture_output=True, check=False)
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-4000:]
    answers = [json.loads(line) for line in completed.stdout.splitlines()]
    assert len(answers) == len(records), f"flinkmem answered {len(answers)} lines for {len(records)} inputs"
    return answers


@dataclass(frozen=True)
class Run:
    """One version's records with both answers, aligned by position."""

    version: str
    records: list[Record]
    flink: list[dict[str, Any]]
    flinkmem: list[dict[str, Any]]

    def rows(self) -> list[tuple[Record, dict[str, Any], dict[str, Any]]]:
        return list(zip(self.records, self.flink, self.flinkmem, strict=True))


def records_for(version: str) -> list[Record]:
    """Vectors, generated cases and probes for `version` (the same for the same version and seed)."""
    return spec_vectors() + generate(version, cases_for(version), SEED) + jobmanager_probes()


@pytest.fixture(scope="module", params=VERSIONS)
def run(request: pytest.FixtureRequest) -> Run:
    version: str = request.param
    records = records_for(version)
    flink = flinkref.run_reference(version, records)
    ours = run_flinkmem(version, records)
    return Run(version, records, flink, ours)


def _family(record: Record) -> str:
    """The generator family (last part of a generated id) or `vector` for the verified vectors."""
    parts = str(record["id"]).split("/")
    return parts[-1] if len(parts) == 4 else "vector"


def _report(
    title: str,
    version: str,
    mismatches: Sequence[tuple[Record, dict[str, Any], dict[str, Any], list[str]]],
    total: int,
) -> str:
    by_field = Counter(field for *_, fields in mismatches for field in fields)
    by_family = Counter(_family(record) for record, *_ in mismatches)
    lines = [
        f"{title}: {len(mismatches)} of {total} cases differ from Flink {version} (seed {SEED}).",
        f"  by field:  {dict(by_field.most_common())}",
        f"  by family: {dict(by_family.most_common())}",
    ]
    for record, flink, ours, fields in mismatches[:SHOWN_MISMATCHES]:
        lines += [
            "",
            f"--- {record['id']}: differs in {', '.join(fields)}",
            f"input:    {json.dumps(record)}",
            f"flink:    {json.dumps(flink)}",
            f"flinkmem: {json.dumps(ours)}",
        ]
    return "\n".join(lines)


def test_same_ids_in_same_order(run: Run) -> None:
    assert [answer["id"] for answer in run.flinkmem] == [record["id"] for record in run.records]
    assert [answer["id"] for answer in run.flink] == [record["id"] for record in run.records]


def test_batch_agrees_with_flink(run: Run) -> None:
    """Validity, every byte field, the direct-memory limit, the JVM flags and the dynamic configs."""
    mismatches = []
    for record, flink, ours in run.rows():
        fields = [field for field in COMPARED_FIELDS if flink.get(field) != ours.get(field)]
        if fields:
            mismatches.append((record, flink, ours, fields))
    assert not mismatches, _report("batch resolution", run.version, mismatches, len(run.records))


# "128 MiB", "128m", "128.000mb" as a number of its own (not the digits inside 41581281280).
_MIN_HEAP_TEXT = re.compile(r"(?<![\d.])128(\.0+)?\s*(mib|mb|m)\b|\b(minimum|recommended)\b", re.IGNORECASE)


def _mentions_low_heap(warnings: Sequence[str]) -> bool:
    """Lenient in wording: a warning about the heap that names the 128 MiB minimum."""
    return any("heap" in text.lower() and _MIN_HEAP_TEXT.search(text) for text in warnings)


def test_low_heap_warning_presence(run: Run) -> None:
    """flinkmem warns about a heap below 128 MiB exactly when Flink does (wording is free)."""
    mismatches = []
    for record, flink, ours in run.rows():
        warned = _mentions_low_heap(ours.get("warnings") or [])
        if flink["valid"] and ours.get("valid") and warned != flink["heapBelowMinimum"]:
            mismatches.append((record, flink, ours, ["warnings"]))
    assert not mismatches, _report("low-heap warning", run.version, mismatches, len(run.records))


# Flink's failure ids (vectors.FAILURE_TEXT) and the flinkmem rules that name them.
RULES_FOR_FAILURE: dict[str, set[str]] = {
    "E1": {"no-sizing-option"},
    "E2": {"metaspace-and-overhead-exceed-process"},
    "E3": {"flink-not-above-off-heap"},
    "E4": {"heap-plus-off-heap-mismatch"},
    "E5": {"heap-exceeds-flink"},
    "E6": {"overhead-range-inconsistent"},
    "E7": {"derived-overhead-out-of-range"},
    "E9": {"process-below-flink-plus-metaspace"},
    "E10": {"invalid-value", "legacy-heap-invalid"},
    "E11": {"invalid-value"},
    "E12": {"invalid-value"},
    "E13": {"size-overflow"},
    "E16": {"legacy-heap-invalid"},
    "INT": {"invalid-value", "legacy-heap-invalid"},
}


def _failure_id(error: str) -> str:
    return next((rule for rule, text in FAILURE_TEXT.items() if text in error), "unknown")


def test_refusals_name_the_same_rule(run: Run) -> None:
    """When both refuse, flinkmem names the check Flink failed first (the order of reads and checks)."""
    mismatches = []
    refused = 0
    for record, flink, ours in run.rows():
        if flink["valid"] or ours.get("valid") or flink.get("inputError"):
            continue
        refused += 1
        failure = _failure_id(flink["error"])
        if ours.get("rule") not in RULES_FOR_FAILURE.get(failure, set()):
            mismatches.append((record, flink, ours, [f"rule {failure} -> {ours.get('rule')}"]))
    assert refused > at_least(500, run.version)
    assert not mismatches, _report("refusal rule", run.version, mismatches, refused)


def _flinkmem_pod_memory(record: Record, version: str) -> tuple[int, int] | str:
    """flinkmem's view of Flink's native-Kubernetes pod memory: (request MiB, limit MiB) or an error."""
    from flinkmem.decisions.container import container_memory
    from flinkmem.engine import DeploymentMode, FlinkMemError, FlinkVersion, resolve_jobmanager
    from flinkmem.sources.roles import JOBMANAGER

    config: dict[str, str] = record["config"]
    flink_version = FlinkVersion.parse(record.get("flinkVersion") or version)
    try:
        memory = resolve_jobmanager(config, flink_version, DeploymentMode.NATIVE)
        container = container_memory(memory.total_process, config, JOBMANAGER, line=flink_line(version))
    except FlinkMemError as error:
        return f"{type(error).__name__}: {error.message}"
    return container.flink_request_mib, container.flink_limit_mib


def test_kubernetes_pod_memory(run: Run) -> None:
    """For valid native-mode cases: Flink's request (MiB of the total process, int-wrapped) and limit
    (request x limit-factor, int cast), or the rejection of a limit factor below 1."""
    mismatches = []
    compared = 0
    for record, flink, ours in run.rows():
        if record.get("mode", "native") != "native" or not flink["valid"] or flink["k8s"] is None:
            continue
        compared += 1
        expected: tuple[int, int] | None = (
            None if flink["k8s"]["error"] else (flink["k8s"]["k8sMemoryMiB"], flink["k8s"]["k8sLimitMiB"])
        )
        actual = _flinkmem_pod_memory(record, run.version)
        agrees = actual == expected if expected is not None else isinstance(actual, str)
        if not agrees:
            mismatches.append((record, flink, {**ours, "k8s(flinkmem)": actual}, ["k8s"]))
    assert compared > at_least(500, run.version)
    assert not mismatches, _report("Kubernetes pod memory", run.version, mismatches, compared)


def _count(run: Run, predicate: Callable[[Record, dict[str, Any]], bool]) -> int:
    return sum(1 for record, flink, _ in run.rows() if predicate(record, flink))


@pytest.mark.parametrize("key", ALL_KEYS)
def test_cases_reach_every_option(run: Run, key: str) -> None:
    """The generated cases put every option into accepted and into refused configurations."""
    accepted = _count(run, lambda record, flink: key in record["config"] and bool(flink["valid"]))
    refused = _count(run, lambda record, flink: key in record["config"] and not flink["valid"])
    assert accepted >= at_least(25, run.version) and refused >= at_least(25, run.version), (key, accepted, refused)


def test_cases_reach_both_modes_and_outcomes(run: Run) -> None:
    outcomes = Counter((record.get("mode", "native"), bool(flink["valid"])) for record, flink, _ in run.rows())
    for mode in ("native", "standalone"):
        for valid in (True, False):
            assert outcomes[mode, valid] >= at_least(200, run.version), (mode, valid, outcomes)
