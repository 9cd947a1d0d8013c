"""Everything flinkmem checks about one FlinkDeployment, as plain data.

The CLI's `check`, the validating webhook and the controller all call `validate_deployment`; they
differ only in what they do with the conflicts (refuse, warn, record) and how they print them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flinkmem.deployment import DEFAULT_CONTAINER, DeploymentSpec, SpecError, from_flinkdeployment
from flinkmem.engine import FlinkMemError, JobManagerMemory
from flinkmem.engine.sizes import format_size
from flinkmem.jvmopts import JvmMemoryFlag, java_opts_sources, memory_flags
from flinkmem.sizing import ContainerMemory, container_memory

__all__ = ["WARNING_LIMIT", "Finding", "Validation", "validate_deployment", "warning_lines"]

# kubectl prints each admission warning on its own line; long ones wrap badly.
WARNING_LIMIT = 120


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    fields: tuple[str, ...] = ()


def warning_lines(text: str) -> list[str]:
    """Splits a message into kubectl warning lines of at most WARNING_LIMIT characters, losing nothing."""
    return textwrap.wrap(text, WARNING_LIMIT, break_long_words=True, break_on_hyphens=False) or [""]


@dataclass(frozen=True)
class Validation:
    spec: DeploymentSpec | None
    memory: JobManagerMemory | None
    container: ContainerMemory | None
    conflicts: tuple[Finding, ...]
    warnings: tuple[Finding, ...]

    @property
    def valid(self) -> bool:
        return not self.conflicts

    @property
    def reason(self) -> str:
        return "; ".join(c.message for c in self.conflicts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "memory": self.memory.to_dict() if self.memory else None,
            "container": self.container.to_dict() if self.container else None,
            "conflicts": [{"code": c.code, "message": c.message, "fields": list(c.fields)} for c in self.conflicts],
            "warnings": [w.message for w in self.warnings],
        }


def _java_opts_findings(spec: DeploymentSpec, memory: JobManagerMemory) -> tuple[list[Finding], list[Finding]]:
    conflicts: list[Finding] = []
    warnings: list[Finding] = []
    expected = {
        "heap-max": memory.heap,
        "heap-initial": memory.heap,
        "metaspace": memory.metaspace,
        "direct": memory.jvm_direct_memory,
    }
    # HotSpot keeps the last occurrence of each flag, so only the effective one can contradict Flink.
    effective: dict[str, tuple[str, JvmMemoryFlag]] = {}
    for source, opts in java_opts_sources(spec.config, spec.container.env):
        for flag in memory_flags(opts):
            effective[flag.kind] = (source, flag)
    for source, flag in effective.values():
        want = expected[flag.kind]
        if want == flag.size:
            continue
        if flag.kind.startswith("heap"):
            conflicts.append(
                Finding(
                    "java-opts-heap-conflict",
                    f"{source} sets {flag.text} ({format_size(flag.size)}), which overrides the derived JVM heap "
                    f"of {format_size(memory.heap)}. Fix: remove {flag.text} from {source} and size the heap "
                    "with jobmanager.memory.* options.",
                    (source,),
                )
            )
        else:
            target = "unlimited" if want is None else format_size(want)
            warnings.append(
                Finding(
                    "java-opts-memory-flag",
                    f"{source}: {flag.text} overrides Flink's {flag.kind} limit ({target})",
                    (source,),
                )
            )
    return conflicts, warnings


def validate_deployment(obj: Mapping[str, Any], container_name: str = DEFAULT_CONTAINER) -> Validation:
    try:
        spec = from_flinkdeployment(obj, container_name)
    except SpecError as exc:
        return Validation(None, None, None, (Finding("invalid-spec", str(exc), (exc.field,)),), ())
    warnings = [Finding(n.code, n.message) for n in spec.notices]
    try:
        memory = spec.resolve()
        container = container_memory(memory, spec.config)
    except FlinkMemError as exc:
        return Validation(spec, None, None, (Finding(exc.rule.value, exc.message, exc.option_keys),), tuple(warnings))
    warnings.extend(Finding(n.code, n.message) for n in memory.warnings)
    conflicts: list[Finding] = []
    limit = spec.container.memory_limit
    if limit is not None and limit < memory.total_process:
        conflicts.append(
            Finding(
                "template-limit-below-process",
                f"The JobManager pod template limits memory to {spec.container.memory_limit_text} "
                f"({format_size(limit)}), below the derived total process memory of "
                f"{format_size(memory.total_process)}, so the container would be OOM-killed. Fix: raise the "
                f"limit to at least {container.request} or remove it.",
                ("resources.limits.memory",),
            )
        )
    opts_conflicts, opts_warnings = _java_opts_findings(spec, memory)
    conflicts.extend(opts_conflicts)
    warnings.extend(opts_warnings)
    return Validation(spec, memory, container, tuple(conflicts), tuple(warnings))
