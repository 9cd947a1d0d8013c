"""Every Flink line against flinkmem, and the first patch of each line against its newest.

    python -m tests.lines.compare [--versions V ...] [--cases N] [--seed S] [--out DIR]
    python -m tests.lines.compare --patches [--cases N]

For each version (default: `flinkdist.LINE_VERSIONS`): the verified vectors and N generated records
per role (the generators of `tests/differential`), plus the probes of `probes.py`, all without a
`flinkVersion` of their own, go once through the reference harness compiled against that version's
jars (one JVM, `--verify`, so native TaskManager lines carry Flink's real pod) and once through
`flinkmem resolve --batch --flink-version <line>`. Compared exactly, as the differential tests do:
JobManager lines on validity, every byte field, the direct-memory limit, the JVM flags and the
dynamic configs (native: also the pod's memory request and limit, through the engine when its API is
importable); TaskManager lines on validity, every component, the JVM flags and the dynamic configs
(native: also Flink's pod, i.e. memory request, JVM options and arguments).

`--patches` instead runs the harness of the first patch (`flinkdist.FIRST_PATCHES`) and of the newest
patch of the same line on the same records and compares the two answers whole.

Results go to `--out` (default `$FLINKMEM_CACHE/lines`): `summary.json` and, per version,
`<version>.mismatches.jsonl` (record, both answers, differing fields). A Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tests.differential import cases, flinkref, tmcases
from tests.differential.test_against_flink import COMPARED_FIELDS as JOBMANAGER_FIELDS
from tests.differential.test_against_flink import run_flinkmem
from tests.differential.test_taskmanager_against_flink import TASKMANAGER_FIELDS
from tests.differential.tmvectors import scenario_records, vector_records
from tests.differential.vectors import Record, spec_vectors, version_line
from tests.lines.probes import jobmanager_probes, limit_factor_probes, taskmanager_probes
from tests.support import flinkdist

__all__ = ["Comparison", "compare_patches", "compare_version", "differences", "main", "records_for"]

DEFAULT_CASES: Final = 3000
DEFAULT_SEED: Final = 20260526
Answer = dict[str, Any]
# Answers of the harness that describe the run rather than Flink's result.
HARNESS_ONLY: Final = frozenset({"launcherAgrees"})


def records_for(version: str, count: int, seed: int) -> list[Record]:
    """Vectors, `count` generated records per role and the probes, for `version`, without flinkVersion."""
    jobmanagers = spec_vectors() + cases.generate(version, count, seed) + jobmanager_probes()
    taskmanagers = vector_records() + scenario_records() + tmcases.generate(version, count, seed)
    taskmanagers += taskmanager_probes()
    records = []
    for record in jobmanagers + taskmanagers:
        record = dict(record)
        record.pop("flinkVersion", None)
        records.append(record)
    return records


def role(record: Record) -> str:
    return "taskmanager" if record.get("role") == "taskmanager" else "jobmanager"


def mode(record: Record) -> str:
    return str(record.get("mode") or "native")


def _java_int(value: int) -> int:
    """(int) of a Java long."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _jobmanager_pod(record: Record, line: str) -> tuple[int, int] | str | None:
    """flinkmem's view of the JobManager pod's memory (request, limit MiB) or its refusal; None when
    the engine's API (which the differential tests use) is not importable."""
    try:
        from flinkmem.decisions.container import container_memory
        from flinkmem.engine import DeploymentMode, FlinkMemError, FlinkVersion, resolve_jobmanager
        from flinkmem.sources.roles import JOBMANAGER
    except ImportError:
        return None
    config: dict[str, str] = record["config"]
    try:
        memory = resolve_jobmanager(config, FlinkVersion.parse(line), DeploymentMode.NATIVE)
        container = container_memory(memory.total_process, config, JOBMANAGER)
    except FlinkMemError as error:
        return f"{type(error).__name__}: {error.message}"
    return container.flink_request_mib, container.flink_limit_mib


def differences(record: Record, flink: Answer, ours: Answer, line: str, our_record: Record | None = None) -> list[str]:
    """The fields in which flinkmem's answer differs from Flink's (empty: they agree). `our_record` is
    what flinkmem was given when that is not `record` (the JobManager pod is asked of the engine)."""
    if flink.get("inputError"):
        return ["harness-input-error"]
    if role(record) == "taskmanager":
        fields = [name for name in TASKMANAGER_FIELDS if flink.get(name) != ours.get(name)]
        pod = flink.get("k8s")
        if mode(record) == "native" and flink["valid"] and ours.get("valid") and pod is not None:
            if pod["memory"] != f"{_java_int(ours['totalProcessMemory'] >> 20)}Mi":
                fields.append("pod.memory")
            if pod["jvmMemOpts"] != ours["jvmArgs"]:
                fields.append("pod.jvmMemOpts")
            if f" {ours['dynamicConfigs']}" not in pod["args"]:
                fields.append("pod.args")
        return fields
    fields = [name for name in JOBMANAGER_FIELDS if flink.get(name) != ours.get(name)]
    k8s = flink.get("k8s")
    if mode(record) == "native" and flink["valid"] and ours.get("valid") and k8s is not None:
        actual = _jobmanager_pod(our_record or record, line)
        if actual is not None:
            agrees = isinstance(actual, str) if k8s["error"] else actual == (k8s["k8sMemoryMiB"], k8s["k8sLimitMiB"])
            if not agrees:
                fields.append("k8s")
    return fields


@dataclass
class Comparison:
    """One version's agreement, per role and mode, and where the time went."""

    version: str
    line: str
    totals: Counter[str] = field(default_factory=Counter)
    mismatches: Counter[str] = field(default_factory=Counter)
    by_fields: Counter[str] = field(default_factory=Counter)
    by_topic: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    # Per role and factor: what Flink's pod sizing says of a memory limit factor ("ok" or the error).
    limit_factors: dict[str, str] = field(default_factory=dict)

    def group(self, record: Record) -> str:
        return f"{role(record)}/{mode(record)}"

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "line": self.line,
            "groups": {
                group: {"cases": total, "mismatches": self.mismatches[group]}
                for group, total in sorted(self.totals.items())
            },
            "byFields": dict(self.by_fields.most_common()),
            "byTopic": dict(self.by_topic.most_common()),
            "seconds": self.seconds,
            "limitFactors": self.limit_factors,
        }


def topic(record: Record) -> str:
    """Where a record comes from: probe topic, vector set or generator family."""
    parts = str(record["id"]).split("/")
    if parts[0] == "probe":
        return f"probe:{parts[1]}"
    if parts[0] == "tm":
        return f"tm:{parts[-1]}"
    if parts[0] in ("tm-vector", "tm-scenario"):
        return parts[0]
    return f"jm:{parts[-1]}" if len(parts) == 4 else "jm-vector"


def _timed(seconds: dict[str, float], name: str, action: Callable[[], Any]) -> Any:
    started = time.monotonic()
    result = action()
    seconds[name] = round(time.monotonic() - started, 2)
    return result


def _download_seconds(version: str) -> float | None:
    home = flinkdist.cache_root() / "flink" / version
    for marker in (flinkdist.JARS_MARKER, flinkdist.MARKER):
        path = home / marker
        if path.is_file():
            seconds = json.loads(path.read_text()).get("downloadSeconds")
            return float(seconds) if seconds is not None else None
    return None


def compare_version(version: str, count: int, seed: int, out: Path) -> Comparison:
    """Runs one version through the harness and flinkmem; writes its mismatches; returns the counts."""
    line = version_line(version)
    comparison = Comparison(version, line)
    seconds = comparison.seconds
    fresh = not flinkdist.jars_installed(version)
    _timed(seconds, "jars", lambda: flinkdist.ensure_jars(version))
    if fresh:
        seconds["download"] = _download_seconds(version) or seconds["jars"]
    _timed(seconds, "compile", lambda: flinkref.harness_classes(version))
    records = records_for(version, count, seed)
    flink: list[Answer] = _timed(seconds, "flink", lambda: flinkref.run_reference(version, records, verify=True))
    ours: list[Answer] = _timed(seconds, "flinkmem", lambda: run_flinkmem(line, records))
    comparison.limit_factors = limit_factors(version)
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{version}.mismatches.jsonl").open("w") as sink:
        for record, theirs, mine in zip(records, flink, ours, strict=True):
            group = comparison.group(record)
            comparison.totals[group] += 1
            fields = differences(record, theirs, mine, line)
            if fields:
                comparison.mismatches[group] += 1
                comparison.by_fields[f"{group}: {','.join(fields)}"] += 1
                comparison.by_topic[f"{group}: {topic(record)}"] += 1
                entry = {"record": record, "fields": fields, "flink": theirs, "flinkmem": mine}
                sink.write(json.dumps(entry) + "\n")
    return comparison


def limit_factors(version: str) -> dict[str, str]:
    """What the pod sizing of `version` makes of each memory limit factor, per role: the pod's memory
    request and limit (JobManager) or request (TaskManager), or Flink's error."""
    answers = flinkref.run_reference(version, limit_factor_probes(), verify=True)
    seen = {}
    for answer in answers:
        name = str(answer["id"])
        if not answer["valid"]:
            seen[name] = str(answer["error"]).split("; caused by")[0]
        elif name.startswith("jm/"):
            k8s = answer["k8s"]
            seen[name] = k8s["error"] or f"request {k8s['k8sMemoryMiB']}Mi, limit {k8s['k8sLimitMiB']}Mi"
        else:
            seen[name] = f"request {answer['k8s']['memory']}, limit {answer['k8s']['memoryLimit']}"
    return seen


def compare_patches(first: str, newest: str, count: int, seed: int, out: Path) -> dict[str, Any]:
    """The harness of `first` against that of `newest` on the same records (answers compared whole)."""
    seconds: dict[str, float] = {}
    for version in (first, newest):
        _timed(seconds, f"jars {version}", lambda version=version: flinkdist.ensure_jars(version))  # type: ignore[misc]
    records = records_for(newest, count, seed)
    older: list[Answer] = _timed(seconds, first, lambda: flinkref.run_reference(first, records, verify=True))
    newer: list[Answer] = _timed(seconds, newest, lambda: flinkref.run_reference(newest, records, verify=True))
    differing: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    for record, a, b in zip(records, older, newer, strict=True):
        keys = sorted(key for key in set(a) | set(b) if key not in HARNESS_ONLY and a.get(key) != b.get(key))
        if keys:
            differing[f"{role(record)}/{mode(record)}: {','.join(keys)}"] += 1
            if len(examples) < 50:
                examples.append({"record": record, first: a, newest: b})
    out.mkdir(parents=True, exist_ok=True)
    (out / f"patches-{first}-{newest}.json").write_text(json.dumps(examples, indent=1) + "\n")
    return {"first": first, "newest": newest, "cases": len(records), "differing": dict(differing), "seconds": seconds}


def _table(comparisons: Iterable[Comparison]) -> str:
    groups = ("jobmanager/native", "jobmanager/standalone", "taskmanager/native", "taskmanager/standalone")
    lines = ["| version | " + " | ".join(groups) + " | harness s | flinkmem s |", "|---" * (len(groups) + 3) + "|"]
    for comparison in comparisons:
        cells = []
        for group in groups:
            total, bad = comparison.totals[group], comparison.mismatches[group]
            cells.append(f"{total - bad}/{total}" + (f" ({bad} differ)" if bad else ""))
        timing = f"{comparison.seconds.get('flink')} | {comparison.seconds.get('flinkmem')}"
        lines.append(f"| {comparison.version} | " + " | ".join(cells) + f" | {timing} |")
    return "\n".join(lines)


def _first_and_newest() -> list[tuple[str, str]]:
    newest = {version_line(version): version for version in flinkdist.LINE_VERSIONS}
    return [(first, newest[version_line(first)]) for first in flinkdist.FIRST_PATCHES]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lines.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", nargs="+", default=list(flinkdist.LINE_VERSIONS), metavar="V")
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES, help="generated records per role")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=None, help="default: $FLINKMEM_CACHE/lines")
    parser.add_argument("--patches", action="store_true", help="first against newest patch of every line")
    parser.add_argument("--pair", nargs=2, action="append", metavar=("OLDER", "NEWER"), help="instead of --patches")
    args = parser.parse_args(argv)
    out: Path = args.out or flinkdist.cache_root() / "lines"
    if args.patches or args.pair:
        results = []
        for first, newest in [tuple(pair) for pair in args.pair or ()] or _first_and_newest():
            result = compare_patches(first, newest, args.cases, args.seed, out)
            print(json.dumps(result), flush=True)
            results.append(result)
        (out / "patches.json").write_text(json.dumps(results, indent=1) + "\n")
        return 0
    comparisons = []
    for version in args.versions:
        comparison = compare_version(version, args.cases, args.seed, out)
        print(json.dumps(comparison.summary()), flush=True)
        comparisons.append(comparison)
    summaries = [comparison.summary() for comparison in comparisons]
    (out / "summary.json").write_text(json.dumps(summaries, indent=1) + "\n")
    print(_table(comparisons))
    return 0


if __name__ == "__main__":
    sys.exit(main())
