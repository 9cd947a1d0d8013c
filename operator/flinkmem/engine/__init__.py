"""The memory engine: pure Python, no Kubernetes, immutable results and typed errors.

Use `resolve_jobmanager(config, FlinkVersion.parse("2.3"), DeploymentMode.NATIVE)` (or
`resolve_taskmanager`); it returns a `JobManagerMemory` (`TaskManagerMemory`) or raises a
`FlinkMemError` exactly where Flink would refuse the configuration. What differs between Flink lines,
and which lines flinkmem supports, is `engine.lines`; a version it does not support raises
`UnsupportedInput`.
"""

from flinkmem.engine.errors import (
    FlinkMemError,
    InvalidOptionValue,
    MemoryConflict,
    MemoryOverflow,
    OptionValue,
    Rule,
    UnsupportedInput,
)
from flinkmem.engine.jobmanager import JobManagerMemory, resolve_jobmanager
from flinkmem.engine.options import Config, RawValue
from flinkmem.engine.process import Notice
from flinkmem.engine.taskmanager import TaskManagerMemory, resolve_taskmanager
from flinkmem.engine.versions import DeploymentMode, FlinkVersion

__all__ = [
    "Config",
    "DeploymentMode",
    "FlinkMemError",
    "FlinkVersion",
    "InvalidOptionValue",
    "JobManagerMemory",
    "MemoryConflict",
    "MemoryOverflow",
    "Notice",
    "OptionValue",
    "RawValue",
    "Rule",
    "TaskManagerMemory",
    "UnsupportedInput",
    "resolve_jobmanager",
    "resolve_taskmanager",
]
