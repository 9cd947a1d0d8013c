"""The referee: real Flink resolving JobManager and TaskManager memory, driven through `java/`.

The harness (`FlinkMemHarness.java`, which hands TaskManager records to `TaskManagerHarness.java`)
is compiled on first use against the version's `flink-dist` and `bash-java-utils` jars into
`$FLINKMEM_CACHE/harness/<version>-<hash of sources and version>/`, and run in one JVM per call for
a whole batch: flinkmem's batch input lines go in on stdin, flinkmem's batch output lines (plus
extra fields such as `heapBelowMinimum`, `k8s`, `cpuCores` or `failedStep`) come back on stdout.
`verify=True` adds the TaskManager cross-checks (the launcher's own method, the real pod).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

from tests.support import flinkdist

__all__ = [
    "HARNESS_SOURCE",
    "JVM_OPTIONS",
    "ReferenceError",
    "ReferenceProcess",
    "harness_classes",
    "harness_command",
    "java_executable",
    "run_main",
    "run_reference",
    "run_reference_lines",
]

HARNESS_DIR: Final = Path(__file__).parent / "java"
HARNESS_SOURCE: Final = HARNESS_DIR / "FlinkMemHarness.java"
HARNESS_CLASS: Final = "FlinkMemHarness"
# Modest and predictable: the machine is shared. The fixed locale keeps Java's default-locale
# upper-casing of boolean values (`Boolean` options) the same everywhere.
JVM_OPTIONS: Final = ("-Xmx512m", "-XX:+UseSerialGC", "-Duser.language=en", "-Duser.country=US")
# Environment that changes Flink's resolution and must not leak in from the caller (1.x reads the
# legacy heaps from FLINK_JM_HEAP and FLINK_TM_HEAP).
SCRUBBED_ENV: Final = ("FLINK_JM_HEAP", "FLINK_TM_HEAP", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")


class ReferenceError(RuntimeError):
    """The reference harness could not be built or run."""


def _jdk_tool(name: str) -> str:
    java_home = os.environ.get("JAVA_HOME", "").strip()
    if java_home:
        candidate = Path(java_home) / "bin" / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ReferenceError(f"`{name}` not found: install a JDK (17+) or set JAVA_HOME")
    return found


def java_executable() -> str:
    """The `java` launcher: `$JAVA_HOME/bin/java`, else the one on PATH."""
    return _jdk_tool("java")


def _jvm_environment() -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in SCRUBBED_ENV}
    environment["LC_ALL"] = "C.UTF-8"
    return environment


def _sources() -> list[Path]:
    return sorted(HARNESS_DIR.glob("*.java"))


def _classpath_jars(version: str) -> list[Path]:
    return [flinkdist.flink_dist_jar(version), flinkdist.bash_java_utils_jar(version)]


def harness_classes(version: str) -> Path:
    """The compiled harness for `version` (compiled now unless cached); a classpath directory."""
    sources = _sources()
    digest_input = b"\0".join(path.name.encode() + b"\0" + path.read_bytes() for path in sources)
    digest = hashlib.sha256(digest_input + b"\0" + version.encode()).hexdigest()[:20]
    target = flinkdist.cache_root() / "harness" / f"{version}-{digest}"
    if (target / f"{HARNESS_CLASS}.class").is_file():
        return target
    classpath = os.pathsep.join(str(jar) for jar in _classpath_jars(version))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{version}-", dir=target.parent) as work:
        classes = Path(work) / "classes"
        command = [_jdk_tool("javac"), "-nowarn", "-encoding", "UTF-8", "-cp", classpath]
        command += ["-d", str(classes), *(str(path) for path in sources)]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise ReferenceError(f"javac failed for Flink {version}:\n{completed.stdout}{completed.stderr}")
        try:
            classes.rename(target)
        except OSError:
            if not (target / f"{HARNESS_CLASS}.class").is_file():  # not a concurrent build
                raise
    return target


def harness_command(version: str, verify: bool = False) -> list[str]:
    """The command line that runs the harness for `version` (compiling it first if needed)."""
    classpath = os.pathsep.join([str(harness_classes(version)), *(str(jar) for jar in _classpath_jars(version))])
    return [
        java_executable(),
        *JVM_OPTIONS,
        "-cp",
        classpath,
        HARNESS_CLASS,
        version,
        *(["--verify"] if verify else []),
    ]


def run_main(version: str, main_class: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Another harness class of `java/` (`main_class`), compiled with the rest: one JSON line per record."""
    if not records:
        return []
    classpath = os.pathsep.join([str(harness_classes(version)), *(str(jar) for jar in _classpath_jars(version))])
    command = [java_executable(), *JVM_OPTIONS, "-cp", classpath, main_class]
    completed = subprocess.run(
        command, input=_encode(records), capture_output=True, env=_jvm_environment(), check=False
    )
    if completed.returncode != 0:
        stderr = completed.stderr.decode(errors="replace")[-4000:]
        raise ReferenceError(f"{main_class} (Flink {version}) exited with {completed.returncode}:\n{stderr}")
    return _decode(completed.stdout, len(records), version)


def run_reference_lines(version: str, lines: bytes, verify: bool = False) -> bytes:
    """Runs one harness JVM over JSON Lines `lines`; returns its stdout (one line per input line)."""
    completed = subprocess.run(
        harness_command(version, verify), input=lines, capture_output=True, env=_jvm_environment(), check=False
    )
    if completed.returncode != 0:
        stderr = completed.stderr.decode(errors="replace")[-4000:]
        raise ReferenceError(f"the Flink {version} harness exited with {completed.returncode}:\n{stderr}")
    return completed.stdout


def _encode(records: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def _decode(output: bytes, expected: int, version: str) -> list[dict[str, Any]]:
    results = [json.loads(line) for line in output.splitlines()]
    if len(results) != expected:
        raise ReferenceError(f"the Flink {version} harness answered {len(results)} lines for {expected} inputs")
    return results


def run_reference(version: str, records: Sequence[Mapping[str, Any]], verify: bool = False) -> list[dict[str, Any]]:
    """Real Flink `version`'s answer for each batch-input record, in order, from one JVM."""
    if not records:
        return []
    return _decode(run_reference_lines(version, _encode(records), verify), len(records), version)


class ReferenceProcess:
    """A long-lived harness JVM, for asking several batches (e.g. warm-up, then a measured run).

    Use as a context manager; `resolve_lines` feeds one batch and returns its answers.
    """

    def __init__(self, version: str) -> None:
        self.version = version
        self._process = subprocess.Popen(
            harness_command(version),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_jvm_environment(),
        )

    def __enter__(self) -> ReferenceProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None:
            raise ReferenceError("the harness process has no pipes")
        return stdin, stdout

    def resolve_lines(self, lines: Sequence[bytes]) -> list[bytes]:
        """Sends `lines` (each one JSON record with its newline) and reads one answer per line."""
        stdin, stdout = self._pipes()
        failure: list[BaseException] = []

        def feed() -> None:
            try:
                stdin.writelines(lines)
                stdin.flush()
            except BaseException as error:  # reported by the reading side
                failure.append(error)

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        answers = list(self._read(stdout, len(lines)))
        writer.join()
        if failure:
            raise ReferenceError(f"writing to the harness failed: {failure[0]}")
        return answers

    def _read(self, stdout: IO[bytes], count: int) -> Iterator[bytes]:
        for _ in range(count):
            line = stdout.readline()
            if not line:
                raise ReferenceError(f"the Flink {self.version} harness stopped early")
            yield line

    def resolve(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        lines = [json.dumps(record).encode() + b"\n" for record in records]
        return [json.loads(answer) for answer in self.resolve_lines(lines)]

    def close(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
