"""Everything flinkmem checks about one Flink configuration source, per role, as plain data.

The CLI's `check`, the validating webhook, the pod webhook and the controller all call
`validate_source` (or `validate_deployment` for a FlinkDeployment object); they differ only in what
they do with the conflicts (refuse, warn, record) and how they print them.

Every conflict stands for something real Flink does: its own refusal (the engine's errors, a limit
factor below 1), or a process that provably runs outside its budget (a `-Xmx` in the Java options
that the start scripts append after Flink's flags). Where Flink silently replaces a value (the
memory of a pod template's main container), the source is admitted with a warning saying what the
pod gets instead.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flinkmem.conventions import DEFAULT_CONTAINER
from flinkmem.decisions.container import ContainerMemory, container_memory
from flinkmem.decisions.javaopts import flags_overriding
from flinkmem.engine import (
    Config,
    DeploymentMode,
    FlinkMemError,
    FlinkVersion,
    JobManagerMemory,
    RawValue,
    resolve_jobmanager,
)
from flinkmem.engine.jobmanager.options import LEGACY_HEAP as JM_LEGACY_HEAP
from flinkmem.engine.jobmanager.options import LEGACY_HEAP_MB as JM_LEGACY_HEAP_MB
from flinkmem.engine.lines import (
    UNRELEASED_NOTICE,
    FlinkLine,
    Support,
    line_of,
    support_of,
    unsupported_message,
)
from flinkmem.engine.sizes import format_size
from flinkmem.sources.flinkdeployment import SpecError, from_flinkdeployment, spec_version
from flinkmem.sources.model import FlinkSource
from flinkmem.sources.quantity import format_mebibytes
from flinkmem.sources.roles import JOBMANAGER, ROLES, ProcessMemory, Resolver, Role

__all__ = [
    "LINE_UNRELEASED",
    "LINE_UNSUPPORTED",
    "WARNING_LIMIT",
    "Finding",
    "RoleValidation",
    "Validation",
    "validate_deployment",
    "validate_role",
    "validate_source",
    "warning_lines",
]

# kubectl prints each admission warning on its own line; long ones wrap badly.
WARNING_LIMIT = 120
# Finding codes about a source's Flink line (engine.lines): not supported, or newer than verified.
LINE_UNSUPPORTED = "flink-line-unsupported"
LINE_UNRELEASED = UNRELEASED_NOTICE


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    fields: tuple[str, ...] = ()


def warning_lines(text: str) -> list[str]:
    """Splits a message into kubectl warning lines of at most WARNING_LIMIT characters, losing nothing."""
    return textwrap.wrap(text, WARNING_LIMIT, break_long_words=True, break_on_hyphens=False) or [""]


@dataclass(frozen=True)
class RoleValidation:
    """One role of a source: the memory its JVM runs with, its container, and what is wrong or risky."""

    role: Role
    memory: ProcessMemory | None
    container: ContainerMemory | None
    conflicts: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    refusal: FlinkMemError | None = None  # Flink's own refusal, with its rule, options and fix as data

    @property
    def valid(self) -> bool:
        return not self.conflicts

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "memory": self.memory.to_dict() if self.memory else None,
            "container": self.container.to_dict() if self.container else None,
            "conflicts": [{"code": c.code, "message": c.message, "fields": list(c.fields)} for c in self.conflicts],
            "warnings": [w.message for w in self.warnings],
        }


@dataclass(frozen=True)
class Validation:
    """A source checked for each of its roles; `problems` are about the source itself (a malformed spec)."""

    source: FlinkSource | None
    roles: tuple[RoleValidation, ...]
    problems: tuple[Finding, ...] = ()
    notes: tuple[Finding, ...] = ()

    @property
    def conflicts(self) -> tuple[Finding, ...]:
        return self.problems + tuple(c for r in self.roles for c in r.conflicts)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return self.notes + tuple(w for r in self.roles for w in r.warnings)

    @property
    def valid(self) -> bool:
        return not self.conflicts

    @property
    def reason(self) -> str:
        return "; ".join(c.message for c in self.conflicts)

    def role(self, role: Role) -> RoleValidation | None:
        return next((r for r in self.roles if r.role == role), None)

    @property
    def jobmanager(self) -> RoleValidation | None:
        return self.role(JOBMANAGER)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"valid": self.valid}
        for result in self.roles:
            data[result.role.key] = result.to_dict()
        data["conflicts"] = [{"code": c.code, "message": c.message, "fields": list(c.fields)} for c in self.conflicts]
        data["warnings"] = [w.message for w in self.warnings]
        return data


def _java_opts_findings(
    source: FlinkSource, role: Role, memory: ProcessMemory, line: FlinkLine
) -> tuple[list[Finding], list[Finding]]:
    conflicts: list[Finding] = []
    warnings: list[Finding] = []
    for name, flag in flags_overriding(source.config, source.container(role).env, role, memory, line):
        if flag.problem is not None:
            conflicts.append(
                Finding(
                    "java-opts-invalid-memory-flag",
                    f"{role}: {name} sets {flag.text}: {flag.problem}. Fix: remove {flag.text} from {name}.",
                    (name,),
                )
            )
        elif flag.kind.startswith("heap"):
            conflicts.append(
                Finding(
                    "java-opts-heap-conflict",
                    f"{role}: {name} sets {flag.text} ({format_size(flag.size)}), which overrides the derived JVM "
                    f"heap of {format_size(memory.jvm_heap)}, so the JVM would run outside its memory budget. Fix: "
                    f"remove {flag.text} from {name} and size the heap with {role.key}.memory.* options.",
                    (name,),
                )
            )
        else:
            want = memory.metaspace if flag.kind == "metaspace" else memory.jvm_direct_memory
            target = "unlimited" if want is None else format_size(want)
            warnings.append(
                Finding(
                    "java-opts-memory-flag",
                    f"{role}: {name}: {flag.text} overrides Flink's {flag.kind} limit ({target})",
                    (name,),
                )
            )
    return conflicts, warnings


def _template_memory_warnings(source: FlinkSource, role: Role, container: ContainerMemory) -> list[Finding]:
    """Flink writes its own memory request and limit over the template's (native and standalone alike)."""
    template = source.container(role)
    found: list[Finding] = []
    for kind, text, given, gets in (
        ("limit", template.memory_limit_text, template.memory_limit, container.limit_bytes),
        ("request", template.memory_request_text, template.memory_request, container.request_bytes),
    ):
        if text is None or given == gets:
            continue
        flink = container.flink_limit_mib if kind == "limit" else container.flink_request_mib
        found.append(
            Finding(
                "template-memory-replaced",
                f"{role}: the pod template's memory {kind} {text} is not used: Flink sets "
                f"{format_mebibytes(flink)} from the {role} memory, and flinkmem sizes the container to "
                f"{container.request}/{container.limit} (request/limit).",
                (f"resources.{kind}s.memory",),
            )
        )
    return found


def _legacy_heap_warning(role: Role, jvm: ProcessMemory, client: ProcessMemory, container: ContainerMemory) -> Finding:
    return Finding(
        "legacy-heap-read-twice",
        f"{role}: Flink 1.x reads the legacy heap option as the process size when it sizes the container "
        f"({format_mebibytes(container.flink_request_mib)}) but as the JVM heap in the pod's start script "
        f"({format_size(jvm.jvm_heap)} of heap, {format_size(jvm.total_process)} in all); flinkmem sizes the "
        f"container to {container.request} so the JVM fits. Fix: set {role.process_size_key} instead.",
    )


_JM_LEGACY_KEYS = frozenset({JM_LEGACY_HEAP.key, JM_LEGACY_HEAP_MB.key})

_Outcome = ProcessMemory | FlinkMemError
_CACHE_SIZE = 4096
# Resolutions are pure functions of their inputs, and admissions, reconciles and drift checks resolve
# the same sources again and again (a GitOps loop retrying a refused manifest, every pod of a cluster).
_resolved: OrderedDict[tuple[object, ...], _Outcome] = OrderedDict()


def _config_key(config: Mapping[str, RawValue]) -> tuple[object, ...]:
    """A hashable, exact key for a configuration. Values other than text (a config.yaml's numbers and
    booleans) carry their type and repr, since True == 1 and 0.0 == -0.0 resolve differently."""
    items = tuple(config.items())
    if all(type(value) is str for _, value in items):
        return items
    return tuple((key, value if type(value) is str else (type(value).__name__, repr(value))) for key, value in items)


def _resolve(
    resolve: Resolver,
    config: Mapping[str, RawValue],
    version: FlinkVersion,
    mode: DeploymentMode,
    env: str | None,
    config_file: str | None = None,
) -> ProcessMemory:
    key = (resolve, _config_key(config), version, mode, env, config_file)
    outcome = _resolved.get(key)
    if outcome is None:
        try:
            outcome = resolve(config, version, mode, env, config_file)
        except FlinkMemError as exc:
            outcome = exc
        _resolved[key] = outcome
        if len(_resolved) > _CACHE_SIZE:
            _resolved.popitem(last=False)
    if isinstance(outcome, FlinkMemError):
        raise outcome.with_traceback(None)
    return outcome


def _jm(
    config: Config, version: FlinkVersion, mode: DeploymentMode, env: str | None, config_file: str | None
) -> ProcessMemory:
    return resolve_jobmanager(config, version, mode, env)


def _resolve_pair(source: FlinkSource, role: Role) -> tuple[ProcessMemory, ProcessMemory]:
    """The memory the role's JVM runs with, and the memory Flink's Kubernetes code sizes its container from.

    The two differ only for the JobManager's 1.x legacy heap options: Flink's client reads them as the
    total process size, the start script in the pod (BashJavaUtils) as the JVM heap, whatever the mode.
    """
    env = source.legacy_heap_env(role)
    if role is not JOBMANAGER:
        file = source.config_file
        memory = _resolve(role.resolve, source.config, source.version, source.mode, env, file)
        if source.mode is DeploymentMode.NATIVE or not any(n.code == "legacy-heap-mapped" for n in memory.notices):
            return memory, memory
        # A standalone TaskManager's Deployment is sized by the cluster specification, which reads the
        # 1.x legacy heap as the process size (as natively); taskmanager.sh in the pod as Flink memory.
        try:
            return memory, _resolve(role.resolve, source.config, source.version, DeploymentMode.NATIVE, None, file)
        except FlinkMemError:
            return memory, memory
    legacy = line_of(source.version).legacy_memory_options
    if not (legacy and (env is not None or _JM_LEGACY_KEYS & source.config.keys())):
        memory = _resolve(_jm, source.config, source.version, source.mode, None)
        return memory, memory
    # The client never sees the pod's environment, so FLINK_JM_HEAP counts only inside the pod.
    client = _resolve(_jm, source.config, source.version, DeploymentMode.NATIVE, None)
    in_pod = _resolve(_jm, source.config, source.version, DeploymentMode.STANDALONE, env)
    if in_pod.total_process == client.total_process and in_pod.jvm_args == client.jvm_args:
        in_pod = client
    # Shown as the source's mode: the start script reads the legacy keys the same way in both modes.
    assert isinstance(in_pod, JobManagerMemory)
    return dataclasses.replace(in_pod, mode=source.mode), client


def validate_role(source: FlinkSource, role: Role) -> RoleValidation:
    """The role of `source`, checked. A version flinkmem does not support is not resolved (a warning says
    so); an unreleased line is resolved with the newest verified line's rules, and what those rules
    refuse is only a warning, since flinkmem cannot know what that Flink refuses."""
    support = support_of(source.version)
    if support is Support.UNSUPPORTED:
        unchecked = Finding(LINE_UNSUPPORTED, f"{role}: not checked: {unsupported_message(source.version)}")
        return RoleValidation(role, None, None, (), (unchecked,))
    result = _validate_role(source, role)
    if support is Support.UNRELEASED:
        return _conflicts_as_warnings(result, source.version)
    return result


def _conflicts_as_warnings(result: RoleValidation, version: FlinkVersion) -> RoleValidation:
    line = line_of(version)
    warnings = [
        Finding(
            conflict.code,
            f"flinkmem cannot know what Flink {version} refuses; by the rules of Flink {line}: {conflict.message}",
            conflict.fields,
        )
        for conflict in result.conflicts
    ]
    return dataclasses.replace(result, conflicts=(), warnings=(*result.warnings, *warnings))


def _validate_role(source: FlinkSource, role: Role) -> RoleValidation:
    line = line_of(source.version)
    try:
        jvm, client = _resolve_pair(source, role)
        container = container_memory(jvm.total_process, source.config, role, client.total_process, line)
    except FlinkMemError as exc:
        refusal = Finding(exc.rule.value, f"{role}: {exc.message}", exc.option_keys)
        return RoleValidation(role, None, None, (refusal,), (), exc)
    warnings = [Finding(n.code, f"{role}: {n.message}") for n in jvm.warnings]
    if client.total_process != jvm.total_process:
        # One warning about the legacy heap, which says all there is to say.
        warnings = [w for w in warnings if w.code != "legacy-heap-mapped"]
        warnings.append(_legacy_heap_warning(role, jvm, client, container))
    warnings.extend(_template_memory_warnings(source, role, container))
    conflicts, opts_warnings = _java_opts_findings(source, role, jvm, line)
    warnings.extend(opts_warnings)
    return RoleValidation(role, jvm, container, tuple(conflicts), tuple(warnings))


def _line_note(version: FlinkVersion) -> Finding | None:
    """What a source of `version` says once about its line (None for a line flinkmem is exact for)."""
    support = support_of(version)
    if support is Support.UNSUPPORTED:
        return Finding(LINE_UNSUPPORTED, f"flinkmem does not check this source: {unsupported_message(version)}")
    if support is Support.UNRELEASED:
        line = line_of(version)
        return Finding(
            LINE_UNRELEASED,
            f"Flink {version} is newer than the newest line flinkmem has verified ({line}): its memory is "
            f"resolved with the rules of Flink {line}, what they refuse is only a warning, and its pods are "
            "left as Flink builds them",
        )
    return None


def validate_source(source: FlinkSource, roles: Sequence[Role] = ROLES) -> Validation:
    notes = tuple(Finding(n.code, n.message) for n in source.notices)
    # Resolution reads only the relevant options: a tenant's 100,000 other keys cost one pass, not one
    # per role and cache key.
    relevant = source.trimmed()
    note = _line_note(source.version)
    if note is None:
        return Validation(source, tuple(validate_role(relevant, role) for role in roles), notes=notes)
    if note.code == LINE_UNSUPPORTED:
        return Validation(source, (), notes=(*notes, note))
    # The line is said once for the source, not once per role.
    results = tuple(validate_role(relevant, role) for role in roles)
    results = tuple(
        dataclasses.replace(result, warnings=tuple(w for w in result.warnings if w.code != LINE_UNRELEASED))
        for result in results
    )
    return Validation(source, results, notes=(*notes, note))


def validate_deployment(
    obj: Mapping[str, Any],
    container_name: str = DEFAULT_CONTAINER,
    roles: Sequence[Role] = ROLES,
    *,
    spec_path: str = "spec",
) -> Validation:
    """A FlinkDeployment object checked for each role. A malformed spec is a problem (refused), unless
    the spec names a Flink line flinkmem is not exact for: then it is only a warning. `spec_path` is where
    the spec lives in what the user wrote (`spec.template.spec` of a FlinkBlueGreenDeployment)."""
    try:
        source = from_flinkdeployment(obj, container_name, spec_path=spec_path)
    except SpecError as exc:
        version = spec_version(obj)
        note = _line_note(version) if version is not None else None
        if note is not None:
            unread = Finding(exc.code, f"flinkmem cannot read {exc}", (exc.field,))
            return Validation(None, (), notes=(note, unread))
        return Validation(None, (), (Finding(exc.code, str(exc), (exc.field,)),))
    return validate_source(source, roles)
