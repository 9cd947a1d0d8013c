"""flinkmem's TaskManagers against real Flink: the same configurations through both, 100% agreement.

Per Flink version, for every line flinkmem supports (`lines.py`: 1.13 to 2.3, the newest patch of
each): every verified vector and Flink-test scenario (tmvectors.py, both modes), the TaskManager
probes aimed at what differs between lines (probes.py) and seeded random TaskManager configurations
(tmcases.py; 6000 for 1.20.3 and 2.3.0, 2000 for the other lines), with a JobManager record from the
JobManager generator after every tenth line, so that the file mixes both roles. It goes once through
the reference harness (one JVM, real Flink classes, --verify) and once through `flinkmem resolve
--batch --flink-version <v>`. Compared exactly on every TaskManager line:
validity, every byte field, the JVM flags and the dynamic configs (native: those of the pod Flink's
resource manager creates); on every JobManager line the JobManager fields.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from tests.differential import cases, flinkref, tmcases
from tests.differential.lines import VERSIONS, at_least, cases_for
from tests.differential.probes import taskmanager_probes
from tests.differential.test_jobmanager_against_flink import COMPARED_FIELDS as JOBMANAGER_FIELDS
from tests.differential.test_jobmanager_against_flink import run_flinkmem
from tests.differential.tmvectors import MAN, OLD_MANAGED, TH, F, P, scenario_records, vector_records

pytestmark = pytest.mark.differential

SEED = int(os.environ.get("FLINKMEM_DIFF_SEED", "20260526"))
JOBMANAGER_EVERY = 10
TASKMANAGER_FIELDS = (
    "valid",
    "totalProcessMemory",
    "totalFlinkMemory",
    "frameworkHeap",
    "frameworkOffHeap",
    "taskHeap",
    "taskOffHeap",
    "networkMemory",
    "managedMemory",
    "jvmMetaspace",
    "jvmOverhead",
    "jvmHeap",
    "jvmDirectMemory",
    "jvmArgs",
    "dynamicConfigs",
)
BATCH_FIELDS = (*TASKMANAGER_FIELDS, "warnings", "error", "rule")
SHOWN_MISMATCHES = 5
MIB = 1 << 20


Record = dict[str, Any]


def mixed_records(version: str, count: int, seed: int) -> list[Record]:
    """Vectors, scenarios, `count` generated TaskManager records and the probes, with JobManager records
    mixed in."""
    taskmanagers = vector_records() + scenario_records() + tmcases.generate(version, count, seed)
    taskmanagers += taskmanager_probes()
    jobmanagers = iter(cases.generate(version, len(taskmanagers) // JOBMANAGER_EVERY + 1, seed))
    records: list[Record] = []
    for index, record in enumerate(taskmanagers):
        records.append(record)
        if index % JOBMANAGER_EVERY == JOBMANAGER_EVERY - 1:
            records.append(next(jobmanagers))
    return records


@dataclass(frozen=True)
class Run:
    version: str
    records: list[Record]
    flink: list[dict[str, Any]]
    flinkmem: list[dict[str, Any]]

    def rows(self, taskmanager: bool = True) -> list[tuple[Record, dict[str, Any], dict[str, Any]]]:
        return [
            row
            for row in zip(self.records, self.flink, self.flinkmem, strict=True)
            if (row[0].get("role") == "taskmanager") is taskmanager
        ]


@pytest.fixture(scope="module", params=VERSIONS)
def run(request: pytest.FixtureRequest) -> Run:
    version: str = request.param
    records = mixed_records(version, cases_for(version), SEED)
    flink = flinkref.run_reference(version, records, verify=True)
    ours = run_flinkmem(version, records)
    return Run(version, records, flink, ours)


def _family(record: Record) -> str:
    record_id = str(record["id"])
    return record_id.split("/")[-1] if record_id.startswith("tm/") else record_id.split("/")[0]


def _report(title: str, version: str, mismatches: Sequence[tuple[Record, Any, Any, list[str]]], total: int) -> str:
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


def test_taskmanager_lines_agree_with_flink(run: Run) -> None:
    """The decision, every byte field, the JVM flags and the dynamic configs, on every TaskManager line."""
    mismatches = []
    rows = run.rows()
    for record, flink, ours in rows:
        fields = [field for field in TASKMANAGER_FIELDS if flink.get(field) != ours.get(field)]
        if fields:
            mismatches.append((record, flink, ours, fields))
    assert len(rows) > cases_for(run.version)
    assert not mismatches, _report("TaskManager resolution", run.version, mismatches, len(rows))


def test_jobmanager_lines_of_the_mixed_file_agree(run: Run) -> None:
    mismatches = []
    rows = run.rows(taskmanager=False)
    for record, flink, ours in rows:
        fields = [field for field in JOBMANAGER_FIELDS if flink.get(field) != ours.get(field)]
        if fields:
            mismatches.append((record, flink, ours, fields))
    assert rows
    assert not mismatches, _report("JobManager lines in a mixed file", run.version, mismatches, len(rows))


def test_taskmanager_lines_have_exactly_the_documented_fields(run: Run) -> None:
    for _, _, ours in run.rows():
        assert tuple(ours)[1:] == BATCH_FIELDS


# Flink's failure (by a text its error chain contains), and the flinkmem rules that name it. First match wins.
FAILURES: tuple[tuple[str, set[str]], ...] = (
    ("failed to map legacy JVM heap option", {"legacy-heap-invalid", "invalid-value"}),
    ("for key 'taskmanager.heap.mb'", {"invalid-value", "legacy-heap-invalid"}),
    ("need to be configured explicitly", {"no-sizing-option"}),
    ("Cannot read memory size from config option", {"invalid-value"}),
    ("Could not split string", {"invalid-value"}),
    ("Could not parse value", {"invalid-value"}),
    ("memory segment size", {"invalid-value"}),
    ("Memory segment size", {"invalid-value"}),
    ("Cannot downcast", {"invalid-value"}),
    ("bytes must be >= 0", {"invalid-value"}),
    ("Character ", {"invalid-value"}),
    ("long overflow", {"size-overflow"}),
    ("Sum of configured JVM Metaspace", {"metaspace-and-overhead-exceed-process"}),
    ("is less than the sum of the derived Total Flink Memory", {"process-below-flink-plus-metaspace"}),
    ("Derived JVM Overhead size", {"derived-overhead-out-of-range"}),
    ("'taskmanager.memory.jvm-overhead.fraction'", {"overhead-range-inconsistent"}),
    ("'taskmanager.memory.network.fraction'", {"network-range-inconsistent"}),
    ("'taskmanager.memory.managed.fraction'", {"managed-fraction-out-of-range"}),
    ("does not match configured Network Memory size", {"network-buffers-mismatch"}),
    ("not in configured Network Memory range", {"derived-network-out-of-range"}),
    ("Task Heap Memory (", {"fine-grained-exceeds-flink"}),
    ("and Network Memory (", {"no-room-for-task-heap"}),
    ("positive number of CPU cores", {"cpu-cores-not-positive"}),
    ("java.lang.IllegalStateException", {"slots-not-positive"}),
)


def _expected_rules(error: str) -> tuple[str, set[str]]:
    return next(((text, rules) for text, rules in FAILURES if text in error), ("unknown", set()))


def test_refusals_name_the_check_flink_failed_first(run: Run) -> None:
    """When both refuse, flinkmem names the check Flink failed first (the order of reads and checks)."""
    mismatches = []
    refused = Counter[str]()
    for record, flink, ours in run.rows():
        if flink["valid"] or ours.get("valid") or flink.get("inputError"):
            continue
        failure, rules = _expected_rules(flink["error"])
        refused[failure] += 1
        if ours.get("rule") not in rules:
            mismatches.append((record, flink, ours, [f"{failure} -> {ours.get('rule')}"]))
    assert sum(refused.values()) > at_least(1000, run.version)
    assert not mismatches, _report("refusal rule", run.version, mismatches, sum(refused.values()))


def _engine(record: Record, version: str) -> Any:
    from flinkmem.engine import DeploymentMode, FlinkVersion, resolve_taskmanager

    flink_version = FlinkVersion.parse(record.get("flinkVersion") or version)
    return resolve_taskmanager(record["config"], flink_version, DeploymentMode.parse(record.get("mode")))


def test_native_pods_are_flinks_pods(run: Run) -> None:
    """Native: Flink's real TaskManager pod (memory request, CPU, JVM options, `-D` arguments) is flinkmem's."""
    mismatches = []
    compared = 0
    for record, flink, ours in run.rows():
        if record.get("mode", "native") != "native" or not flink["valid"]:
            continue
        compared += 1
        memory = _engine(record, run.version)
        pod = flink["k8s"]
        actual = (f"{memory.flink_pod_memory_mib}Mi", memory.cpu_cores, memory.jvm_args)
        expected = (pod["memory"], float(pod["cpu"]), pod["jvmMemOpts"])
        if actual != expected or f" {ours['dynamicConfigs']}" not in pod["args"]:
            mismatches.append((record, flink, {**ours, "pod(flinkmem)": actual}, ["pod"]))
    assert compared > at_least(1000, run.version)
    assert not mismatches, _report("native pod", run.version, mismatches, compared)


def test_standalone_strings_are_the_launchers(run: Run) -> None:
    """Standalone: BashJavaUtils' own getTmResourceParams gives the strings the harness reports."""
    standalone = [flink for record, flink, _ in run.rows() if record.get("mode") == "standalone"]
    assert len(standalone) > at_least(1000, run.version)
    assert all(flink["launcherAgrees"] for flink in standalone)


def test_cpu_slots_and_extended_resources_agree(run: Run) -> None:
    mismatches = []
    for record, flink, ours in run.rows():
        if not flink["valid"] or not ours["valid"]:
            continue
        memory = _engine(record, run.version)
        actual = (memory.cpu_cores, memory.slots, dict(memory.external_resources))
        if actual != (flink["cpuCores"], flink["slots"], flink["externalResources"]):
            mismatches.append((record, flink, ours, ["cpu/slots/resources"]))
    assert not mismatches, _report("CPU, slots, extended resources", run.version, mismatches, len(run.rows()))


def test_low_task_heap_warning_presence(run: Run) -> None:
    """flinkmem warns about a task heap below 128 MiB exactly when Flink's task heap is below it."""
    mismatches = []
    for record, flink, ours in run.rows():
        if flink["valid"] and ours["valid"]:
            warned = any(re.search(r"task heap .* below", text) for text in ours["warnings"])
            if warned != (flink["taskHeap"] < 128 * MIB):
                mismatches.append((record, flink, ours, ["warnings"]))
    assert not mismatches, _report("low task heap warning", run.version, mismatches, len(run.rows()))


# --- coverage of the generated cases ---------------------------------------------------------


def _count(run: Run, predicate: Callable[[Record, dict[str, Any]], bool]) -> int:
    return sum(1 for record, flink, _ in run.rows() if predicate(record, flink))


@pytest.mark.parametrize("key", tmcases.ALL_KEYS)
def test_cases_reach_every_option(run: Run, key: str) -> None:
    """Every option (and deprecated key) appears in accepted and in refused configurations."""
    accepted = _count(run, lambda record, flink: key in record["config"] and bool(flink["valid"]))
    refused = _count(run, lambda record, flink: key in record["config"] and not flink["valid"])
    assert accepted >= at_least(20, run.version) and refused >= at_least(20, run.version), (key, accepted, refused)


@pytest.mark.parametrize(
    "path",
    ["fine-grained", "total-flink", "total-process"],
)
def test_cases_reach_every_derivation_path(run: Run, path: str) -> None:
    def on_path(config: dict[str, str]) -> str | None:
        if TH in config and (MAN in config or OLD_MANAGED in config):
            return "fine-grained"
        if F in config:
            return "total-flink"
        return "total-process" if P in config else None

    accepted = _count(run, lambda record, flink: on_path(record["config"]) == path and bool(flink["valid"]))
    refused = _count(run, lambda record, flink: on_path(record["config"]) == path and not flink["valid"])
    assert accepted >= at_least(200, run.version) and refused >= at_least(100, run.version), (path, accepted, refused)


def test_cases_reach_both_modes_and_outcomes(run: Run) -> None:
    outcomes = Counter((record.get("mode", "native"), bool(flink["valid"])) for record, flink, _ in run.rows())
    for mode in ("native", "standalone"):
        for valid in (True, False):
            assert outcomes[mode, valid] >= at_least(500, run.version), (mode, valid, outcomes)


# Refusals only 1.x can give (legacy heap keys, legacy network buffers and their segment size).
ONLY_1X = {
    "failed to map legacy JVM heap option",
    "for key 'taskmanager.heap.mb'",
    "memory segment size",
    "Memory segment size",
    "Cannot downcast",
    "bytes must be >= 0",
    "does not match configured Network Memory size",
}


def test_cases_reach_every_refusal(run: Run) -> None:
    reached = Counter(_expected_rules(flink["error"])[0] for _, flink, _ in run.rows() if not flink["valid"])
    expected = [text for text, _ in FAILURES if run.version.startswith("1.") or text not in ONLY_1X]
    missing = [text for text in expected if reached[text] == 0]
    assert not missing, (missing, reached)
    assert reached["unknown"] == 0
