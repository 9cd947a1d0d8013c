"""flinkmem against real Flink, for speed: prints figures and ratios, asserts nothing.

(a) Batch throughput on the same seeded file of generated configurations (100,000 by default):
    `flinkmem resolve --batch` as a fresh subprocess (start-up included; its default worker count,
    one per CPU for a file this large, and again with --jobs 1) versus Flink's own resolution in
    one warm JVM (the reference harness, after a full warm-up pass). Two files: JobManager lines
    only, and JobManager and TaskManager lines mixed half and half (`"role": "taskmanager"`,
    generated like the differential cases; Flink resolves each TaskManager line as the launcher or,
    in native mode, as the client, resource manager and pod sizing do).
(b) One cold resolution of `jobmanager.memory.process.size=1600m`: the `flinkmem resolve -D ...`
    command versus the command Flink's start scripts run,
    `java -classpath bash-java-utils.jar:flink-dist-*.jar ...BashJavaUtils GET_JM_RESOURCE_PARAMS`.
    Wall time, median of several runs, the two interleaved; flinkmem's byte code compiled first, as
    pip compiles it when installing.

Targets (reported, not enforced): batch >= 1.5x Flink's warm throughput; cold >= 3x faster.

    .venv/bin/python benchmarks/run.py [--cases N] [--cold-runs N] [--batch-runs N] [--versions V ...]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flinkmem
from tests.differential import flinkref, tmcases
from tests.differential.cases import generate
from tests.support import flinkdist

BATCH_TARGET = 1.5
COLD_TARGET = 3.0
SEED = 424242
COMPARED_FIELDS = ("valid", "jvmHeap", "offHeap", "jvmMetaspace", "jvmOverhead", "jvmArgs", "dynamicConfigs")
TASKMANAGER_FIELDS = (
    "valid",
    "totalProcessMemory",
    "frameworkHeap",
    "frameworkOffHeap",
    "taskHeap",
    "taskOffHeap",
    "networkMemory",
    "managedMemory",
    "jvmMetaspace",
    "jvmOverhead",
    "jvmArgs",
    "dynamicConfigs",
)
BASH_JAVA_UTILS = "org.apache.flink.runtime.util.bash.BashJavaUtils"
SINGLE_OPTION = "jobmanager.memory.process.size=1600m"


def flinkmem_base() -> list[str]:
    script = Path(sys.executable).parent / "flinkmem"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "flinkmem"]


@dataclass(frozen=True)
class Row:
    name: str
    flinkmem: str
    flink: str
    ratio: float
    target: float

    def markdown(self) -> str:
        verdict = "met" if self.ratio >= self.target else "not met"
        return f"| {self.name} | {self.flinkmem} | {self.flink} | {self.ratio:.2f}x | >= {self.target:g}x ({verdict}) |"


def _timed(command: Sequence[str], *, stdin_path: Path | None = None, stdout_path: Path | None = None) -> float:
    stdin = stdin_path.open("rb") if stdin_path else subprocess.DEVNULL
    stdout = stdout_path.open("wb") if stdout_path else subprocess.DEVNULL
    try:
        started = time.perf_counter()
        completed = subprocess.run(command, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - started
    finally:
        for handle in (stdin, stdout):
            if not isinstance(handle, int):
                handle.close()
    if completed.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({completed.returncode}):\n{completed.stderr.decode()[-2000:]}")
    return elapsed


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} cases/s ({seconds:.2f} s)"


def mixed_records(version: str, cases: int) -> list[dict[str, object]]:
    """Half JobManager, half TaskManager records, alternating, generated like the differential cases."""
    jobmanagers = generate(version, (cases + 1) // 2, SEED)
    taskmanagers = tmcases.generate(version, cases // 2, SEED)
    mixed: list[dict[str, object]] = []
    for index in range(cases):
        source = jobmanagers if index % 2 == 0 else taskmanagers
        mixed.append(source[index // 2])
    return mixed


def _agrees(mine: dict[str, object], theirs: dict[str, object]) -> bool:
    fields = TASKMANAGER_FIELDS if "networkMemory" in theirs else COMPARED_FIELDS
    return all(mine.get(field) == theirs.get(field) for field in fields)


def batch_benchmark(
    version: str, records: Sequence[dict[str, object]], label: str, runs: int, work: Path
) -> tuple[Row, list[str]]:
    cases = len(records)
    lines = [json.dumps(record).encode() + b"\n" for record in records]
    batch_file = work / f"cases-{label}-{version}.jsonl"
    batch_file.write_bytes(b"".join(lines))
    answers_file = work / f"flinkmem-{label}-{version}.jsonl"
    command = [*flinkmem_base(), "resolve", "--batch", "--flink-version", version]

    ours_times = [_timed(command, stdin_path=batch_file, stdout_path=answers_file) for _ in range(runs)]
    ours = [json.loads(line) for line in answers_file.read_bytes().splitlines()]
    one_process = [*command, "--jobs", "1"]
    ours_single = statistics.median(_timed(one_process, stdin_path=batch_file) for _ in range(runs))

    started = time.perf_counter()
    flinkref.run_reference_lines(version, batch_file.read_bytes())
    flink_cold = time.perf_counter() - started
    flink_times = []
    with flinkref.ReferenceProcess(version) as harness:
        harness.resolve_lines(lines)  # warm-up pass: class loading and JIT
        for _ in range(runs):
            started = time.perf_counter()
            answers = harness.resolve_lines(lines)
            flink_times.append(time.perf_counter() - started)
    flink = [json.loads(answer) for answer in answers]

    agreeing = sum(1 for mine, theirs in zip(ours, flink, strict=True) if _agrees(mine, theirs))
    ours_median, flink_median = statistics.median(ours_times), statistics.median(flink_times)
    row = Row(
        f"batch, {cases:,} {label} cases, Flink {version}",
        _rate(cases, ours_median),
        _rate(cases, flink_median) + " warm",
        flink_median / ours_median,
        BATCH_TARGET,
    )
    notes = [
        f"Flink {version}, {label}: flinkmem with --jobs 1 (one process, no workers): {_rate(cases, ours_single)}, "
        f"{flink_median / ours_single:.2f}x Flink's warm throughput.",
        f"Flink {version}, {label}: one cold harness JVM over the same file took {flink_cold:.2f} s "
        f"({cases / flink_cold:,.0f} cases/s, start-up and JIT included).",
        f"Flink {version}, {label}: flinkmem and Flink agree on {agreeing:,} of {cases:,} cases "
        "(validity, every compared byte field, JVM flags, dynamic configs).",
    ]
    return row, notes


def cold_benchmark(version: str, runs: int, work: Path) -> tuple[Row, list[str]]:
    conf_dir = work / f"conf-{version}"
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "config.yaml").write_text("# the option comes as a dynamic property\n")
    classpath = os.pathsep.join([str(flinkdist.bash_java_utils_jar(version)), str(flinkdist.flink_dist_jar(version))])
    java = [flinkref.java_executable(), "-classpath", classpath, BASH_JAVA_UTILS, "GET_JM_RESOURCE_PARAMS"]
    java += ["--configDir", str(conf_dir), "-D", SINGLE_OPTION]
    ours = [*flinkmem_base(), "resolve", "-D", SINGLE_OPTION, "--flink-version", version]

    # An installed flinkmem has its byte code (pip compiles it); an editable one run with
    # PYTHONDONTWRITEBYTECODE would compile every module on every start and measure that instead.
    compileall.compile_dir(str(Path(flinkmem.__file__).parent), quiet=1)
    check = subprocess.run(java, capture_output=True, text=True, check=False)
    results = [line for line in check.stdout.splitlines() if line.startswith("BASH_JAVA_UTILS_EXEC_RESULT:")]
    _timed(ours)  # one untimed run each: file system caches
    ours_times, java_times = [], []
    for _ in range(runs):
        ours_times.append(_timed(ours))
        java_times.append(_timed(java))
    ours_median, java_median = statistics.median(ours_times), statistics.median(java_times)
    row = Row(
        f"cold single resolve (1600m), Flink {version}",
        f"{ours_median * 1000:.0f} ms",
        f"{java_median * 1000:.0f} ms BashJavaUtils",
        java_median / ours_median,
        COLD_TARGET,
    )
    notes = [
        f"Flink {version}: BashJavaUtils printed {len(results)} result lines: "
        + " | ".join(line.split(":", 1)[1] for line in results),
        f"Flink {version}: cold runs (ms) flinkmem {[round(t * 1000) for t in ours_times]}, "
        f"BashJavaUtils {[round(t * 1000) for t in java_times]}",
    ]
    return row, notes


def _java_version() -> str:
    completed = subprocess.run([flinkref.java_executable(), "-version"], capture_output=True, text=True, check=False)
    return (completed.stderr.splitlines() or ["?"])[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="flinkmem against real Flink, for speed (no assertions).")
    parser.add_argument("--cases", type=int, default=100_000, help="batch size (default 100000)")
    parser.add_argument("--batch-runs", type=int, default=3, help="timed batch runs, median (default 3)")
    parser.add_argument("--cold-runs", type=int, default=15, help="timed cold runs, median (default 15)")
    parser.add_argument("--versions", nargs="+", default=list(flinkdist.FLINK_VERSIONS), metavar="V")
    args = parser.parse_args(argv)

    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="flinkmem-bench-") as tmp:
        work = Path(tmp)
        for version in args.versions:
            flinkdist.ensure(version)
            flinkref.harness_classes(version)
            for row, extra in (
                batch_benchmark(version, generate(version, args.cases, SEED), "JobManager", args.batch_runs, work),
                batch_benchmark(version, mixed_records(version, args.cases), "mixed-role", args.batch_runs, work),
                cold_benchmark(version, args.cold_runs, work),
            ):
                rows.append(row)
                notes.extend(extra)

    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"flinkmem vs Apache Flink: {python}, {_java_version()}, {os.cpu_count()} CPUs, seed {SEED}\n")
    print("| benchmark | flinkmem | Flink | speed-up | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row.markdown())
    print()
    for note in notes:
        print(f"- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
