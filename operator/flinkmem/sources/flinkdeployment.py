"""From a FlinkDeployment to a `FlinkSource`, the way the Apache Flink Kubernetes Operator builds it.

The operator flattens `spec.flinkConfiguration` (flat keys or nested maps, joined with "."), then
writes each role's resources over it (`sources.resources`): `spec.<role>.resources` (Kubernetes
ResourceRequirements, the operator's main branch) when it has requests or limits, else the older
`spec.<role>.resource`; memory over `<role>.memory.process.size`, read as a Flink size first (so `2g`
is 2 GiB and `512m` is 512 MiB, never milli) and only then as a Kubernetes quantity; CPU over
`kubernetes.<role>.cpu.amount`; limits/requests over the limit factors. Each role's main container in
the pod templates (the role's template merged over `spec.podTemplate`) adds its memory request and
limit and its environment (`FLINK_JM_HEAP`, `FLINK_ENV_JAVA_OPTS_JM`, ...).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flinkmem.conventions import DEFAULT_CONTAINER
from flinkmem.engine import DeploymentMode, FlinkVersion, Notice, UnsupportedInput
from flinkmem.sources.fabric8 import operator_memory_bytes
from flinkmem.sources.model import FlinkSource, MainContainer
from flinkmem.sources.quantity import QuantityError, quantity_bytes
from flinkmem.sources.resources import apply_role_resources
from flinkmem.sources.roles import ROLES, Role
from flinkmem.sources.specfields import SpecError, scalar_text

__all__ = [
    "DeploymentSource",
    "SpecError",
    "deployment_source",
    "flatten_configuration",
    "from_flinkdeployment",
    "memory_inputs",
    "operator_memory_bytes",
    "spec_version",
]


# Flink's own option keys have a handful of dot-separated parts; a deeper map is no configuration, and its
# walk must stay far from Python's recursion limit.
MAX_CONFIG_DEPTH = 64


def flatten_configuration(conf: object, path: str = "spec.flinkConfiguration") -> tuple[dict[str, str], list[Notice]]:
    if conf is None:
        return {}, []
    if not isinstance(conf, Mapping):
        raise SpecError(path, "must be a map of Flink option keys to values")
    out: dict[str, str] = {}
    notices: list[Notice] = []

    def walk(node: Mapping[Any, Any], prefix: str, depth: int) -> None:
        if depth > MAX_CONFIG_DEPTH:
            raise SpecError(
                f"{path}.{prefix.rstrip('.')[:200]}",
                f"nests more than {MAX_CONFIG_DEPTH} levels of keys; write the keys flat (a.b.c: value)",
            )
        for key, value in node.items():
            full = f"{prefix}{key}"
            if type(value) is str:  # nearly every value: no checks to make
                text = value
            elif isinstance(value, Mapping):
                walk(value, full + ".", depth + 1)
                continue
            elif isinstance(value, list):
                text = ";".join(scalar_text(v, f"{path}.{full}") for v in value)
            else:
                text = scalar_text(value, f"{path}.{full}")
            if full in out:
                notices.append(
                    Notice("duplicate-config-key", f"{full} is set both flat and nested; the operator may use either")
                )
            out[full] = text

    walk(conf, "", 1)
    return out, notices


def _main_container(template: object, container_name: str, path: str) -> Mapping[str, Any] | None:
    if template is None:
        return None
    if not isinstance(template, Mapping):
        raise SpecError(path, "must be a pod template object")
    spec = template.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise SpecError(f"{path}.spec", "must be an object")
    containers = spec.get("containers") or []
    if not isinstance(containers, list):
        raise SpecError(f"{path}.spec.containers", "must be a list")
    for index, container in enumerate(containers):
        if not isinstance(container, Mapping):
            raise SpecError(f"{path}.spec.containers[{index}]", "must be an object")
        if container.get("name") == container_name:
            return container
    return None


def _memory_of(container: Mapping[str, Any], kind: str, path: str) -> tuple[int, str] | None:
    resources = container.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise SpecError(f"{path}.resources", "must be an object")
    values = resources.get(kind) or {}
    if not isinstance(values, Mapping):
        raise SpecError(f"{path}.resources.{kind}", "must be an object")
    raw = values.get("memory")
    if raw is None:
        return None
    text = scalar_text(raw, f"{path}.resources.{kind}.memory")
    try:
        return quantity_bytes(text), text
    except QuantityError as exc:
        raise SpecError(f"{path}.resources.{kind}.memory", str(exc)) from None


def _env_of(container: Mapping[str, Any], path: str) -> dict[str, str]:
    env = container.get("env") or []
    if not isinstance(env, list):
        raise SpecError(f"{path}.env", "must be a list")
    out: dict[str, str] = {}
    for index, item in enumerate(env):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise SpecError(f"{path}.env[{index}]", "must be an object with a name")
        value = item.get("value")
        if isinstance(value, str):
            out[item["name"]] = value
    return out


def _container(spec: Mapping[str, Any], role: Role, container_name: str) -> MainContainer:
    limit: tuple[int, str] | None = None
    request: tuple[int, str] | None = None
    env: dict[str, str] = {}
    section = spec.get(role.spec_field)
    # The role's template is merged over the shared one, so it wins key by key.
    for path, template in (
        ("spec.podTemplate", spec.get("podTemplate")),
        (f"spec.{role.spec_field}.podTemplate", section.get("podTemplate") if isinstance(section, Mapping) else None),
    ):
        container = _main_container(template, container_name, path)
        if container is None:
            continue
        cpath = f"{path}.spec.containers[{container_name}]"
        limit = _memory_of(container, "limits", cpath) or limit
        request = _memory_of(container, "requests", cpath) or request
        env.update(_env_of(container, cpath))
    return MainContainer(
        memory_limit=limit[0] if limit else None,
        memory_request=request[0] if request else None,
        memory_limit_text=limit[1] if limit else None,
        memory_request_text=request[1] if request else None,
        env=env,
    )


def spec_version(obj: object) -> FlinkVersion | None:
    """The Flink line `spec.flinkVersion` names, read alone (None when it names none)."""
    spec = obj.get("spec") if isinstance(obj, Mapping) else None
    raw = spec.get("flinkVersion") if isinstance(spec, Mapping) else None
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return FlinkVersion.parse(raw)
    except UnsupportedInput:
        return None


def _version_and_mode(spec: Mapping[str, Any]) -> tuple[FlinkVersion, DeploymentMode]:
    raw_version = spec.get("flinkVersion")
    if not isinstance(raw_version, str) or not raw_version:
        raise SpecError("spec.flinkVersion", "must be set, for example v1_20 or v2_1")
    try:
        version = FlinkVersion.parse(raw_version)
    except UnsupportedInput as exc:
        raise SpecError("spec.flinkVersion", str(exc)) from None
    raw_mode = spec.get("mode")
    if raw_mode is not None and not isinstance(raw_mode, str):
        raise SpecError("spec.mode", "must be native or standalone")
    try:
        mode = DeploymentMode.parse(raw_mode)
    except UnsupportedInput as exc:
        raise SpecError("spec.mode", str(exc)) from None
    return version, mode


def from_flinkdeployment(
    obj: Mapping[str, Any], container_name: str = DEFAULT_CONTAINER, *, spec_path: str = "spec"
) -> FlinkSource:
    """The configuration source a FlinkDeployment object (a parsed manifest or API object) describes.

    `spec_path` is where the spec lives in the resource the user wrote (`spec.template.spec` for the
    FlinkDeployment a FlinkBlueGreenDeployment deploys): errors name that path.
    """
    try:
        return _from_flinkdeployment(obj, container_name)
    except SpecError as exc:
        if spec_path == "spec":
            raise
        raise exc.rerooted(spec_path) from None


def _from_flinkdeployment(obj: Mapping[str, Any], container_name: str) -> FlinkSource:
    if not isinstance(obj, Mapping):
        raise SpecError("(object)", "must be a FlinkDeployment object")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise SpecError("metadata", "must be an object")
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise SpecError("spec", "is missing; a FlinkDeployment needs a spec")
    config, notices = flatten_configuration(spec.get("flinkConfiguration"))
    version, mode = _version_and_mode(spec)
    resource_memory: dict[str, str] = {}
    for role in ROLES:
        memory = apply_role_resources(spec, role, version, config, notices)
        if memory is not None:
            resource_memory[role.key] = memory
    return FlinkSource(
        kind="FlinkDeployment",
        name=str(metadata.get("name") or ""),
        namespace=str(metadata.get("namespace") or ""),
        config=config,
        version=version,
        mode=mode,
        containers={role.key: _container(spec, role, container_name) for role in ROLES},
        notices=tuple(notices),
        resource_memory=resource_memory,
    )


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def memory_inputs(obj: Mapping[str, Any] | None) -> str:
    """The raw parts of a FlinkDeployment that can change the memory of its processes, as canonical text."""
    spec = _get(obj, "spec")
    parts: dict[str, Any] = {
        "flinkConfiguration": _get(spec, "flinkConfiguration"),
        "flinkVersion": _get(spec, "flinkVersion"),
        "mode": _get(spec, "mode"),
        "podTemplate": _get(spec, "podTemplate"),
    }
    for role in ROLES:
        # resource.cpu counts too: a TaskManager's CPU is part of what Flink hands its JVM.
        parts[f"{role.spec_field}.resource"] = _get(spec, role.spec_field, "resource")
        parts[f"{role.spec_field}.resources"] = _get(spec, role.spec_field, "resources")
        parts[f"{role.spec_field}.podTemplate"] = _get(spec, role.spec_field, "podTemplate")
    return json.dumps(parts, sort_keys=True, default=str)


@dataclass(frozen=True)
class DeploymentSource:
    """A FlinkDeployment as a cache keeps it: where Events about it go, the source it describes (trimmed
    to what resolution reads) or why it describes none, a digest of its memory inputs and the
    generations that tell whether the operator has rolled its spec out."""

    ref: Mapping[str, Any]  # apiVersion, kind and metadata (name, namespace, uid)
    source: FlinkSource | None
    problem: str | None
    inputs: str
    generation: int | None = None
    observed_generation: int | None = None
    version: FlinkVersion | None = None  # the line spec.flinkVersion names, even when the spec is malformed

    @property
    def rolled_out(self) -> bool:
        """False while the operator has not rolled out the newest spec (pods of either spec may appear)."""
        if self.generation is None or self.observed_generation is None:
            return True  # no operator bookkeeping (flinkmem's bundled CRD): the spec is what pods come from
        return self.observed_generation >= self.generation


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def deployment_source(obj: Mapping[str, Any], container_name: str = DEFAULT_CONTAINER) -> DeploymentSource:
    """What a cache keeps of a FlinkDeployment object: a few KiB, whatever the object's size."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    ref = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {
            key: metadata.get(key) for key in ("name", "namespace", "uid") if isinstance(metadata.get(key), str)
        },
    }
    status = obj.get("status")
    observed = status.get("observedGeneration") if isinstance(status, Mapping) else None
    inputs = hashlib.sha256(memory_inputs(obj).encode()).hexdigest()
    try:
        source: FlinkSource | None = from_flinkdeployment(obj, container_name).trimmed()
        problem = None
    except SpecError as exc:
        source, problem = None, str(exc)
    return DeploymentSource(
        ref,
        source,
        problem,
        inputs,
        _int_or_none(metadata.get("generation")),
        _int_or_none(observed),
        spec_version(obj),
    )
