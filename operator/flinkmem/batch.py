"""`flinkmem resolve --batch`: JSON Lines in, one JSON line out per input line, in order.

Input line: `{"id": <any JSON>, "config": {key: string}, "flinkVersion": "2.3" (optional),
"mode": "native" | "standalone" (optional)}`. Output line: `{"id", "valid", "totalProcessMemory",
"totalFlinkMemory", "jvmHeap", "offHeap", "jvmMetaspace", "jvmOverhead", "jvmDirectMemory",
"jvmArgs", "dynamicConfigs", "warnings", "error", "rule"}`. A line that is not such an object
yields `{"id", "valid": false, "inputError": true, "error"}` and processing goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from flinkmem.engine import DeploymentMode, FlinkMemError, FlinkVersion, UnsupportedInput, resolve_jobmanager

__all__ = ["resolve_line", "resolve_record", "run_batch"]

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


class _InputError(ValueError):
    pass


def _input_error(record_id: object, message: str) -> dict[str, Any]:
    return {"id": record_id, "valid": False, "inputError": True, "error": message}


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
        version = FlinkVersion.parse(raw_version) if raw_version is not None else default_version
        mode = DeploymentMode.parse(raw_mode)
    except UnsupportedInput as exc:
        raise _InputError(str(exc)) from None
    return config, version, mode


def resolve_record(record: object, default_version: FlinkVersion) -> dict[str, Any]:
    record_id = record.get("id") if isinstance(record, dict) else None
    try:
        config, version, mode = _parse_record(record, default_version)
    except _InputError as exc:
        return _input_error(record_id, str(exc))
    try:
        memory = resolve_jobmanager(config, version, mode)
    except FlinkMemError as exc:
        return {"id": record_id, "valid": False, **_EMPTY, "error": exc.message, "rule": exc.rule.value}
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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def resolve_line(line: str, default_version: FlinkVersion) -> str:
    try:
        record = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return json.dumps(_input_error(None, f"not valid JSON: {exc}"))
    try:
        return json.dumps(resolve_record(record, default_version), allow_nan=False)
    except ValueError:
        # Only an id can carry a number too large for a double (1e400); echoing it would not be JSON.
        return json.dumps(_input_error(None, "the id is a number outside the range of a double; use a string id"))


def resolve_lines(lines: Iterable[bytes], default_version: FlinkVersion) -> Iterator[str]:
    for raw in lines:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield json.dumps(_input_error(None, f"the line is not UTF-8 text: {exc}"))
            continue
        yield resolve_line(line, default_version)


def run_batch(source: IO[bytes], sink: IO[str], default_version: FlinkVersion, flush_each: bool) -> int:
    """Resolves every line of `source` into one line of `sink`; returns the number of lines."""
    count = 0
    for out in resolve_lines(source, default_version):
        sink.write(out + "\n")
        if flush_each:
            sink.flush()
        count += 1
    sink.flush()
    return count
