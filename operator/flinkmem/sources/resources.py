"""A role's resources on a FlinkDeployment, written into Flink's configuration as the Apache operator writes them.

Two fields say how much a JobManager or TaskManager gets:

- `spec.<role>.resource` `{cpu, memory, ephemeralStorage}`, in every release (deprecated on the
  operator's main branch);
- `spec.<role>.resources`, Kubernetes `ResourceRequirements` (`requests`, `limits`), on the operator's
  main branch since FLINK-33548 (commit d131b70a, June 2026); no release has it yet.

`FlinkConfigBuilder.applyResourceConfig` (main) uses `resources` when its `requests` or `limits` map is
non-empty (`ResourceConfigUtils.hasResourceRequirements`) and then ignores `resource` entirely, with a
line in the operator's log only; otherwise `resource` as before (`setResource`). From `resources`
(`setResourceRequirements`):

- memory: the request, else the limit (`getRequestOrLimit`), through `parseResourceMemoryString` (Flink's
  syntax first, `sources.fabric8`) over `<role>.memory.process.size`, as `resource.memory`;
- CPU: the request, else the limit, as fabric8's number over `kubernetes.<role>.cpu.amount` (and the
  pre-1.17 `kubernetes.<role>.cpu`);
- when a request and a limit are both set and the request is positive (`computeLimitFactor`): limit /
  request, each fabric8's number as a double, over `kubernetes.<role>.cpu.limit-factor` and
  `kubernetes.<role>.memory.limit-factor`. The factor divides Kubernetes numbers while the process size
  is read Flink's way first, so `2048m` (2 GiB to Flink, 2.048 bytes to Kubernetes) over `4Gi` makes a
  factor of 2.097152E9;
- other resources (ephemeral storage, GPUs) go into the main container of the pod template; they do
  not change memory.

What the operator's validator refuses about `resources` (`DefaultValidator.validateResourceRequirements`
on main), and what its builder fails on at deploy time, is refused here with a message of flinkmem's
own: a memory or CPU quantity it cannot read, one that is not positive, a request above its limit,
a memory limit factor that cannot be computed or is below 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flinkmem.engine import FlinkVersion, Notice
from flinkmem.engine.javatext import java_double_to_string
from flinkmem.engine.options import java_text
from flinkmem.engine.sizes import format_size
from flinkmem.sources.fabric8 import BigDecimal, Fabric8Error, numerical_amount, operator_memory
from flinkmem.sources.roles import Role
from flinkmem.sources.specfields import SpecError, scalar_text

__all__ = [
    "REQUEST_ABOVE_LIMIT",
    "apply_role_resources",
    "has_resource_requirements",
]

# The rules of refusals about `resources`, beside a malformed field (specfields.INVALID_SPEC).
UNREADABLE = "resources-quantity-unreadable"
NOT_POSITIVE = "resources-not-positive"
REQUEST_ABOVE_LIMIT = "resources-request-above-limit"
FACTOR_UNREADABLE = "resources-limit-factor-unreadable"
FACTOR_BELOW_ONE = "resources-limit-factor-below-one"


def _writes_old_cpu_keys(version: FlinkVersion) -> bool:
    """Flink 1.17 renamed kubernetes.<role>.cpu to .cpu.amount (FLINK-29372); the operator writes the new
    key always and the old one too for older lines (`FlinkConfigBuilder.configureCpu`)."""
    return version.major < 2 and (version.minor is None or version.minor < 17)


_SECTIONS = ("requests", "limits")


def _section(resources: Mapping[str, Any], name: str, path: str) -> Mapping[str, Any]:
    values = resources.get(name)
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise SpecError(f"{path}.{name}", "must be a map of resource names to quantities, such as memory: 2Gi")
    return values


def _quantity_text(value: object, path: str) -> str:
    """A quantity value as the operator's Jackson reads it (`Quantity.Deserializer`: the node's text)."""
    if isinstance(value, (Mapping, list)):
        raise SpecError(path, "must be a quantity, such as 2Gi or 500m")
    return scalar_text(value, path)


def has_resource_requirements(resources: object) -> bool:
    """`ResourceConfigUtils.hasResourceRequirements`: a non-empty `requests` or `limits` map."""
    if not isinstance(resources, Mapping):
        return False
    return any(isinstance(resources.get(name), Mapping) and resources[name] for name in _SECTIONS)


def _number(text: str, path: str, what: str) -> BigDecimal:
    try:
        return numerical_amount(text)
    except Fabric8Error as exc:
        raise SpecError(path, f"{text!r} is not a {what} the operator can read ({exc})", UNREADABLE) from None


def _read_memory(text: str, path: str) -> int:
    try:
        size = operator_memory(text).size
    except ValueError as exc:
        raise SpecError(path, str(exc), UNREADABLE) from None
    if size <= 0:
        raise SpecError(path, f"{text!r} must be positive: the operator refuses a memory of 0", NOT_POSITIVE)
    return size


def _read_cpu(text: str, path: str) -> BigDecimal:
    amount = _number(text, path, "CPU quantity")
    if amount.signum() <= 0:
        raise SpecError(path, f"{text!r} must be positive: the operator refuses a CPU of 0 or less", NOT_POSITIVE)
    return amount


def _set_cpu(config: dict[str, str], role: Role, version: FlinkVersion, cpu: float) -> None:
    text = java_double_to_string(cpu)
    config[f"kubernetes.{role.key}.cpu.amount"] = text
    if _writes_old_cpu_keys(version):
        config[f"kubernetes.{role.key}.cpu"] = text


def _set_memory(config: dict[str, str], role: Role, size: int, memory: str, where: str, notices: list[Notice]) -> None:
    overridden = config.get(role.process_size_key)
    if overridden is not None:
        notices.append(
            Notice("process-size-overridden", f"{where}={memory} replaces {role.process_size_key}={overridden}")
        )
    config[role.process_size_key] = f"{size}b"
    if memory.strip().isdigit() and int(memory.strip()) != 0:
        notices.append(
            Notice("bare-number-size", f"{where}={memory.strip()} has no unit, so it means bytes; add a unit like 'm'")
        )


def _apply_resource(
    section: Mapping[str, Any],
    role: Role,
    version: FlinkVersion,
    config: dict[str, str],
    notices: list[Notice],
    path: str,
    *,
    ignored: bool,
) -> str | None:
    """`spec.<role>.resource` as `setResource` writes it; with `ignored` (resources wins) only checked,
    as the operator's validator still reads it. Returns the memory text that was written."""
    resource = section.get("resource") or {}
    if not isinstance(resource, Mapping):
        raise SpecError(f"{path}.resource", "must be an object")
    cpu = resource.get("cpu")
    if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, (int, float))):
        raise SpecError(f"{path}.resource.cpu", "must be a number of cores, such as 1 or 0.5")
    memory: str | None = None
    size: int | None = None
    if resource.get("memory") is not None:
        memory = scalar_text(resource["memory"], f"{path}.resource.memory")
        try:
            size = operator_memory(memory).size
        except ValueError as exc:
            raise SpecError(f"{path}.resource.memory", str(exc)) from None
    if ignored:
        if resource:
            given = ", ".join(
                f"{k}={java_text(v)}" for k, v in sorted(resource.items()) if isinstance(v, (str, int, float))
            )
            notices.append(
                Notice(
                    "resource-ignored",
                    f"{role.spec_field}.resource ({given}) is ignored: {role.spec_field}.resources is set, and the "
                    f"operator then reads only resources (it says so only in its log). Fix: remove {role.spec_field}"
                    ".resource",
                )
            )
        return None
    if cpu is not None:
        _set_cpu(config, role, version, float(cpu))
    if memory is None or size is None:
        return None
    _set_memory(config, role, size, memory, f"{role.spec_field}.resource.memory", notices)
    return memory


def _factor(
    requests: Mapping[str, str], limits: Mapping[str, str], key: str, path: str
) -> tuple[float, BigDecimal, BigDecimal] | None:
    """`computeLimitFactor`: limit / request as doubles of fabric8's numbers; None without both or with
    a request of 0 or less. A quantity fabric8 cannot read fails the operator's deploy."""
    if key not in requests or key not in limits:
        return None
    amounts: list[BigDecimal] = []
    for name, values in (("requests", requests), ("limits", limits)):
        try:
            amounts.append(numerical_amount(values[key]))
        except Fabric8Error as exc:
            raise SpecError(
                f"{path}.resources.{name}.{key}",
                f"the operator divides limits.{key} by requests.{key} as Kubernetes quantities, and "
                f"{values[key]!r} is not one ({exc}), so its deploy fails. Fix: write both in Kubernetes units, "
                "such as 2Gi and 4Gi",
                FACTOR_UNREADABLE,
            ) from None
    request, limit = amounts
    denominator = request.to_double()
    if denominator <= 0:
        return None
    return limit.to_double() / denominator, request, limit


def _apply_resources(
    section: Mapping[str, Any],
    role: Role,
    version: FlinkVersion,
    config: dict[str, str],
    notices: list[Notice],
    path: str,
) -> str | None:
    """`spec.<role>.resources` as `setResourceRequirements` writes it; returns the memory text written."""
    raw = section["resources"]
    base = f"{path}.resources"
    sections = {name: _section(raw, name, base) for name in _SECTIONS}
    # Quantities of null are skipped, as the operator's Java maps hold them (getRequestOrLimit, the validator).
    texts: dict[str, dict[str, str]] = {
        name: {key: _quantity_text(v, f"{base}.{name}.{key}") for key, v in values.items() if v is not None}
        for name, values in sections.items()
    }
    requests, limits = texts["requests"], texts["limits"]
    sizes: dict[str, int] = {}
    cpus: dict[str, BigDecimal] = {}
    # DefaultValidator.validateQuantities: every memory and CPU entry, requests first.
    for name in _SECTIONS:
        if "memory" in texts[name]:
            sizes[name] = _read_memory(texts[name]["memory"], f"{base}.{name}.memory")
        if "cpu" in texts[name]:
            cpus[name] = _read_cpu(texts[name]["cpu"], f"{base}.{name}.cpu")
    # validateRequestNotAboveLimit: CPU as Kubernetes numbers, memory as the operator reads it for Flink.
    for key, values in (("cpu", {n: c.to_double() for n, c in cpus.items()}), ("memory", sizes)):
        if "requests" in values and "limits" in values and float(values["requests"]) > float(values["limits"]):
            raise SpecError(
                f"{base}.requests.{key}",
                f"{requests[key]} is above limits.{key} {limits[key]}; Kubernetes refuses such a pod and the "
                f"operator refuses the FlinkDeployment. Fix: raise limits.{key} to at least {requests[key]} or "
                f"lower the request",
                REQUEST_ABOVE_LIMIT,
            )
    cpu_used = "requests" if "requests" in cpus else "limits" if "limits" in cpus else None
    if cpu_used is not None:
        _set_cpu(config, role, version, cpus[cpu_used].to_double())
    cpu_factor = _factor(requests, limits, "cpu", path)
    if cpu_factor is not None:
        config[f"kubernetes.{role.key}.cpu.limit-factor"] = java_double_to_string(cpu_factor[0])
    memory_factor = _factor(requests, limits, "memory", path)
    if memory_factor is not None:
        factor = memory_factor[0]
        key = role.limit_factor.key
        if not factor >= 1:
            raise SpecError(
                f"{base}.limits.memory",
                f"the operator sets {key} to limits.memory / requests.memory read as Kubernetes quantities: "
                f"{limits['memory']} / {requests['memory']} = {java_double_to_string(factor)}, below 1, which "
                f"Flink refuses when it builds the pod (Flink reads the request as {format_size(sizes['requests'])}). "
                "Fix: write both in Kubernetes units (Mi, Gi), the limit at least the request",
                FACTOR_BELOW_ONE,
            )
        config[key] = java_double_to_string(factor)
        flink_ratio = float(sizes["limits"]) / float(sizes["requests"])
        if factor != flink_ratio:
            notices.append(
                Notice(
                    "resources-limit-factor-units",
                    f"{role.spec_field}.resources: the operator divides limits.memory by requests.memory as Kubernetes "
                    f"quantities ({limits['memory']} / {requests['memory']} = {java_double_to_string(factor)}), while "
                    f"Flink reads the request as {format_size(sizes['requests'])}: the pod's memory limit becomes "
                    f"that times {java_double_to_string(factor)}, not {limits['memory']}. Fix: write both in "
                    "Kubernetes units (Mi, Gi)",
                )
            )
    memory_used = "requests" if "requests" in sizes else "limits" if "limits" in sizes else None
    if memory_used is None:
        return None
    memory = texts[memory_used]["memory"]
    where = f"{role.spec_field}.resources.{memory_used}.memory"
    _set_memory(config, role, sizes[memory_used], memory, where, notices)
    return memory


def apply_role_resources(
    spec: Mapping[str, Any], role: Role, version: FlinkVersion, config: dict[str, str], notices: list[Notice]
) -> str | None:
    """Writes the role's `resources` (or else its `resource`) over `config` as the operator does; returns the
    memory text that replaced `<role>.memory.process.size`, if any."""
    path = f"spec.{role.spec_field}"
    section = spec.get(role.spec_field) or {}
    if not isinstance(section, Mapping):
        raise SpecError(path, "must be an object")
    resources = section.get("resources")
    if resources is not None and not isinstance(resources, Mapping):
        raise SpecError(f"{path}.resources", "must be an object with requests and limits")
    if has_resource_requirements(resources):
        _apply_resource(section, role, version, config, notices, path, ignored=True)
        return _apply_resources(section, role, version, config, notices, path)
    if resources is not None:
        # An empty `resources` (or one with only claims) leaves `resource` in charge; its maps are still read.
        for name in _SECTIONS:
            _section(resources, name, f"{path}.resources")
    return _apply_resource(section, role, version, config, notices, path, ignored=False)
