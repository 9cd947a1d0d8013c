"""`flinkmem resolve --batch`: JSON Lines in, one JSON line out per input line, in order.

Input line: `{"id": <any JSON>, "config": {key: string}, "flinkVersion": "2.3" (optional; a line from
1.13 to 2.3, or a newer 2.x line, which is resolved with 2.3's rules and a warning saying so),
"mode": "native" | "standalone" (optional), "role": "jobmanager" | "taskmanager" (optional,
default jobmanager)}`. Output line for a JobManager: `{"id", "valid", "totalProcessMemory",
"totalFlinkMemory", "jvmHeap", "offHeap", "jvmMetaspace", "jvmOverhead", "jvmDirectMemory",
"jvmArgs", "dynamicConfigs", "warnings", "error", "rule"}`; for a TaskManager: `{"id", "valid",
"totalProcessMemory", "totalFlinkMemory", "frameworkHeap", "frameworkOffHeap", "taskHeap",
"taskOffHeap", "networkMemory", "managedMemory", "jvmMetaspace", "jvmOverhead", "jvmHeap",
"jvmDirectMemory", "jvmArgs", "dynamicConfigs", "warnings", "error", "rule"}` (native mode: the
values of the pod Flink's resource manager creates). A line that is not such an object yields
`{"id", "valid": false, "inputError": true, "error"}` and processing goes on.

Lines are decoded and encoded by msgspec; whatever it refuses (invalid UTF-8, numbers beyond a
double, lone surrogates, nesting past its depth) goes through the standard library instead, which
either reads the line after all or words the input error. Large inputs are cut into chunks of whole
lines that worker processes resolve while the parent writes their answers back in input order.

When the native extension `flinkmem._fastpath` is built (`make install` builds it from `native/`),
it answers the common lines and hands every other line back to the Python path below, which stays
the reference: the answers are the same bytes either way. FLINKMEM_NO_FASTPATH=1 turns it off.
"""

from __future__ import annotations

import functools
import json
import math
import os
import queue
import stat
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import IO, Any

import msgspec

from flinkmem.engine import (
    DeploymentMode,
    FlinkMemError,
    FlinkVersion,
    UnsupportedInput,
    resolve_jobmanager,
    resolve_taskmanager,
)
from flinkmem.engine.lines import Support, line_notices, support_of, unsupported_message

try:
    from flinkmem import _fastpath

    FASTPATH = not os.environ.get("FLINKMEM_NO_FASTPATH")
except ImportError:  # a plain `pip install` has no Rust build step; every line takes the Python path
    FASTPATH = False

__all__ = [
    "auto_jobs",
    "regular_file_size",
    "resolve_chunk",
    "resolve_line",
    "resolve_line_in_python",
    "resolve_lines",
    "resolve_record",
    "run_batch",
    "usable_cpus",
]

# Below this much input, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 1 << 20
CHUNK_BYTES = 256 << 10

_EMPTY: dict[str, Any] = {
    "totalProcessMemory": None,
    "totalFlinkMemory": None,
    "jvmHeap": None,
    "offHeap": None,
    "jvmMetaspace": None,
    "jvmOverhead": None,
    "jvmDirectMemory": None,
    "jvmArgs": None,
    "dynamicConfigs": None,
    "warnings": [],
}
_EMPTY_TASKMANAGER: dict[str, Any] = {
    "totalProcessMemory": None,
    "totalFlinkMemory": None,
    "frameworkHeap": None,
    "frameworkOffHeap": None,
    "taskHeap": None,
    "taskOffHeap": None,
    "networkMemory": None,
    "managedMemory": None,
    "jvmMetaspace": None,
    "jvmOverhead": None,
    "jvmHeap": None,
    "jvmDirectMemory": None,
    "jvmArgs": None,
    "dynamicConfigs": None,
    "warnings": [],
}
_ROLES = {"jobmanager": False, "taskmanager": True}
_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


class _InputError(ValueError):
    pass


def _input_error(record_id: object, message: str) -> dict[str, Any]:
    return {"id": record_id, "valid": False, "inputError": True, "error": message}


@functools.lru_cache(maxsize=64)  # batches name the same few versions and modes on every line
def _parse_version(text: str) -> FlinkVersion:
    """A record's `flinkVersion`, refused (UnsupportedInput) unless flinkmem supports the line."""
    version = FlinkVersion.parse(text)
    if support_of(version) is Support.UNSUPPORTED:
        raise UnsupportedInput(unsupported_message(version))
    return version


_parse_mode = functools.lru_cache(maxsize=16)(DeploymentMode.parse)


def _refused(record_id: object, empty: dict[str, Any], exc: FlinkMemError, version: FlinkVersion) -> dict[str, Any]:
    # An unreleased line's warning is kept with a refusal too: the refusal is by another line's rules.
    warnings = [n.message for n in line_notices(version)]
    return {
        "id": record_id,
        "valid": False,
        **empty,
        "warnings": warnings,
        "error": exc.message,
        "rule": exc.rule.value,
    }


def _parse_role(raw_role: object) -> bool:
    """True for a TaskManager line; absent or null means a JobManager line."""
    if raw_role is None:
        return False
    taskmanager = _ROLES.get(raw_role.strip().lower()) if isinstance(raw_role, str) else None
    if taskmanager is None:
        raise _InputError('\'role\' must be "jobmanager" or "taskmanager"')
    return taskmanager


def _parse_record(record: object, default_version: FlinkVersion) -> tuple[dict[str, str], FlinkVersion, DeploymentMode]:
    if not isinstance(record, dict):
        raise _InputError("each line must be a JSON object with a 'config' member")
    config = record.get("config")
    if not isinstance(config, dict):
        raise _InputError("'config' must be a JSON object mapping option keys to string values")
    for key, value in config.items():
        if not isinstance(value, str):
            raise _InputError(f"config value of {key!r} must be a string, not {type(value).__name__}")
    raw_version = record.get("flinkVersion")
    raw_mode = record.get("mode")
    if raw_version is not None and not isinstance(raw_version, str):
        raise _InputError('\'flinkVersion\' must be a string such as "2.3" or "v1_20"')
    if raw_mode is not None and not isinstance(raw_mode, str):
        raise _InputError('\'mode\' must be "native" or "standalone"')
    try:
        version = _parse_version(raw_version) if raw_version is not None else default_version
        mode = _parse_mode(raw_mode)
    except UnsupportedInput as exc:
        raise _InputError(str(exc)) from None
    if support_of(version) is Support.UNSUPPORTED:  # a default no CLI would have accepted
        raise _InputError(unsupported_message(version))
    return config, version, mode


def resolve_record(record: object, default_version: FlinkVersion) -> dict[str, Any]:
    record_id = record.get("id") if isinstance(record, dict) else None
    try:
        config, version, mode = _parse_record(record, default_version)
        taskmanager = isinstance(record, dict) and _parse_role(record.get("role"))
    except _InputError as exc:
        return _input_error(record_id, str(exc))
    if taskmanager:
        return _resolve_taskmanager(record_id, config, version, mode)
    try:
        memory = resolve_jobmanager(config, version, mode)
    except FlinkMemError as exc:
        return _refused(record_id, _EMPTY, exc, version)
    return {
        "id": record_id,
        "valid": True,
        "totalProcessMemory": memory.total_process,
        "totalFlinkMemory": memory.total_flink,
        "jvmHeap": memory.heap,
        "offHeap": memory.off_heap,
        "jvmMetaspace": memory.metaspace,
        "jvmOverhead": memory.overhead,
        "jvmDirectMemory": memory.jvm_direct_memory,
        "jvmArgs": memory.jvm_args,
        "dynamicConfigs": memory.dynamic_configs,
        "warnings": [n.message for n in memory.warnings],
        "error": None,
        "rule": None,
    }


def _resolve_taskmanager(
    record_id: object, config: dict[str, str], version: FlinkVersion, mode: DeploymentMode
) -> dict[str, Any]:
    try:
        memory = resolve_taskmanager(config, version, mode)
    except FlinkMemError as exc:
        return _refused(record_id, _EMPTY_TASKMANAGER, exc, version)
    return {
        "id": record_id,
        "valid": True,
        "totalProcessMemory": memory.total_process,
        "totalFlinkMemory": memory.total_flink,
        "frameworkHeap": memory.framework_heap,
        "frameworkOffHeap": memory.framework_off_heap,
        "taskHeap": memory.task_heap,
        "taskOffHeap": memory.task_off_heap,
        "networkMemory": memory.network,
        "managedMemory": memory.managed,
        "jvmMetaspace": memory.metaspace,
        "jvmOverhead": memory.overhead,
        "jvmHeap": memory.jvm_heap,
        "jvmDirectMemory": memory.jvm_direct_memory,
        "jvmArgs": memory.jvm_args,
        "dynamicConfigs": memory.dynamic_configs,
        "warnings": [n.message for n in memory.warnings],
        "error": None,
        "rule": None,
    }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _resolve_line_by_stdlib(raw: bytes, default_version: FlinkVersion) -> bytes:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return json.dumps(_input_error(None, f"the line is not UTF-8 text: {exc}")).encode()
    try:
        record = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return json.dumps(_input_error(None, f"not valid JSON: {exc}")).encode()
    try:
        return json.dumps(resolve_record(record, default_version), allow_nan=False).encode()
    except ValueError:
        # Only an id can carry a number too large for a double (1e400); echoing it would not be JSON.
        error = _input_error(None, "the id is a number outside the range of a double; use a string id")
        return json.dumps(error).encode()


def resolve_line(raw: bytes | str, default_version: FlinkVersion) -> bytes:
    """One input line (without its newline) to one output line (without one), as UTF-8 JSON."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if FASTPATH and _fast_default(default_version):
        answer = _fastpath.resolve_line(data, default_version.major, _minor(default_version))
        if answer is not None:
            return answer
    return resolve_line_in_python(data, default_version)


def resolve_line_in_python(data: bytes, default_version: FlinkVersion) -> bytes:
    """`resolve_line` without the native fast path: the reference answer for every line."""
    try:
        record = _DECODER.decode(data)
    except (ValueError, RecursionError):
        return _resolve_line_by_stdlib(data, default_version)
    return _ENCODER.encode(resolve_record(record, default_version))


def _minor(version: FlinkVersion) -> int:
    return -1 if version.minor is None else version.minor


def _fast_default(version: FlinkVersion) -> bool:
    """Whether the fast path may see `version` as a batch's default: a line flinkmem is exact for (the
    fast path answers no other, and an arbitrary version's numbers need not fit its integers)."""
    return support_of(version) is Support.EXACT


def resolve_chunk(chunk: bytes, default_version: FlinkVersion) -> bytes:
    """Every line of `chunk` (whole lines, the last newline optional), each answer ending in a newline."""
    if FASTPATH and _fast_default(default_version):
        fallback = functools.partial(resolve_line_in_python, default_version=default_version)
        return _fastpath.resolve_chunk(chunk, default_version.major, _minor(default_version), fallback)
    lines = chunk.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    answers = [resolve_line_in_python(line, default_version) for line in lines]
    answers.append(b"")
    return b"\n".join(answers)


def resolve_lines(lines: Iterable[bytes], default_version: FlinkVersion) -> Iterator[bytes]:
    for raw in lines:
        yield resolve_line(raw[:-1] if raw.endswith(b"\n") else raw, default_version)


def regular_file_size(source: IO[bytes]) -> int | None:
    """The size of `source` if it is a regular file; None for a pipe, a terminal or an in-memory stream."""
    try:
        info = os.fstat(source.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def auto_jobs(source: IO[bytes]) -> int:
    """Worker processes for `source`: one per usable CPU for a large regular file, else none.

    Workers pay off only on a large input; a pipe's size is unknown, so it stays in one process
    unless `--jobs` asks otherwise. There are never more workers than chunks to hand out.
    """
    size = regular_file_size(source)
    if size is None or size < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(usable_cpus(), size // CHUNK_BYTES))


def usable_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup CPU quota if there is one.

    In a Kubernetes pod the affinity usually lists every CPU of the node while the pod's limit
    allows only a few; a worker per node CPU would just queue behind the quota.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_cpu_quota(cgroup_root)
    return max(1, min(cpus, math.ceil(quota))) if quota is not None else cpus


def _cgroup_cpu_quota(root: Path) -> float | None:
    """CPUs allowed by cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`; None if unlimited."""
    try:
        fields = (root / "cpu.max").read_text().split()
        if len(fields) == 2 and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _chunks(source: IO[bytes]) -> Iterator[bytes]:
    """`source` in pieces of whole lines, at most about CHUNK_BYTES each.

    `read1` returns what is there instead of waiting for a full chunk, so a line written by a
    program that then waits for its answer is handed on at once.
    """
    read = getattr(source, "read1", source.read)
    carry = b""
    while block := read(CHUNK_BYTES):
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            carry += block
            continue
        yield carry + block[:cut]
        carry = block[cut:]
    if carry:
        yield carry


def run_batch(
    source: IO[bytes], sink: IO[bytes], default_version: FlinkVersion, flush_each: bool, jobs: int = 1
) -> int:
    """Resolves every line of `source` into one line of `sink`; returns the number of lines."""
    if jobs > 1:
        return _run_parallel(source, sink, default_version, jobs, flush_each)
    count = 0
    for out in resolve_lines(source, default_version):
        sink.write(out + b"\n")
        if flush_each:
            sink.flush()
        count += 1
    sink.flush()
    return count


def _run_parallel(
    source: IO[bytes], sink: IO[bytes], default_version: FlinkVersion, jobs: int, flush_each: bool
) -> int:
    if "fork" not in get_all_start_methods():
        return run_batch(source, sink, default_version, flush_each)
    count = 0
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("fork")) as pool:
        # With the fork method the executor starts every worker on its first task. Doing that here,
        # before the reader thread exists, means no process is ever forked from a threaded parent.
        pool.submit(int).result()
        # Bounded, so that memory stays flat however large the input is.
        submitted: queue.Queue[Future[bytes] | BaseException | None] = queue.Queue(maxsize=2 * jobs)
        reader = threading.Thread(
            target=_submit_chunks,
            args=(source, pool, default_version, submitted),
            name="flinkmem-batch-reader",
            daemon=True,  # never keeps the process alive once the writer has given up
        )
        reader.start()
        # The reader waits on input while this thread writes answers, in order, as they complete.
        while (item := submitted.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            count += _write(sink, item.result())
            if flush_each:
                sink.flush()
        reader.join()
    sink.flush()
    return count


def _submit_chunks(
    source: IO[bytes],
    pool: ProcessPoolExecutor,
    default_version: FlinkVersion,
    submitted: queue.Queue[Future[bytes] | BaseException | None],
) -> None:
    try:
        for chunk in _chunks(source):
            submitted.put(pool.submit(resolve_chunk, chunk, default_version))
    except BaseException as exc:  # handed to the writing thread, which raises it
        submitted.put(exc)
        return
    submitted.put(None)


def _write(sink: IO[bytes], answers: bytes) -> int:
    sink.write(answers)
    return answers.count(b"\n")
