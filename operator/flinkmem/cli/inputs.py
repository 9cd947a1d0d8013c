"""What the user hands the CLI: files (FlinkDeployments, `config.yaml`, `flink-conf.yaml`), `-D` values,
a Flink version and a mode, read into sources. Anything unusable is a `UsageError` (exit code 2)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from flinkmem.engine import DeploymentMode, FlinkVersion, UnsupportedInput
from flinkmem.engine.configfile import ConfigFileError, check_yaml_limits
from flinkmem.engine.lines import Support, support_of, unsupported_message
from flinkmem.engine.versions import LATEST
from flinkmem.sources.flinkconfig import LEGACY_FILE, from_config_file
from flinkmem.sources.flinkdeployment import SpecError, from_flinkdeployment
from flinkmem.sources.model import FlinkSource

__all__ = [
    "UsageError",
    "config_file_source",
    "load_yaml_documents",
    "maybe_deployments",
    "mode",
    "parse_dynamic",
    "parse_version",
    "require_supported",
    "resolve_source",
]


class UsageError(Exception):
    """Input flinkmem cannot use at all; exit code 2."""


# Manifests may be as large as the API server takes (3 MiB); Flink's own files are capped lower.
MANIFEST_CHARS = 3 * 1024 * 1024
MANIFEST_NODES = 200_000


def _manifest_documents(path: Path, text: str) -> list[Any]:
    """The YAML documents of a manifest, read only once it is known to be bounded: no anchors or aliases
    (whose expansion can be exponential), a bounded size, depth and number of nodes."""
    try:
        check_yaml_limits(text, max_chars=MANIFEST_CHARS, max_nodes=MANIFEST_NODES)
    except ConfigFileError as exc:
        raise UsageError(f"{path}: {exc}") from None
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise UsageError(f"{path} is not valid YAML: {' '.join(str(exc).split())[:300]}") from None


def load_yaml_documents(path: Path) -> list[Any]:
    return _manifest_documents(path, read_text(path))


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def maybe_deployments(path: Path, kinds: tuple[str, ...] = ("FlinkDeployment",)) -> list[Mapping[str, Any]]:
    """FlinkDeployments (or other `kinds`) in a file that may also be a Flink config.yaml, which PyYAML cannot
    always load."""
    if path.name == LEGACY_FILE:
        return []  # not YAML to Flink 1.x but lines of `key: value`, so never parsed as YAML
    try:
        return flink_deployments(_manifest_documents(path, read_text(path)), kinds)
    except UsageError:
        # A YAML 1.1 loader chokes on some valid YAML 1.2 (like a plain `=`), and a Flink file has limits
        # of its own: the Flink parser decides.
        return []


def parse_version(text: str | None) -> FlinkVersion | None:
    """`--flink-version`: a line flinkmem supports (or an unreleased one), else a UsageError."""
    if text is None:
        return None
    try:
        return require_supported(FlinkVersion.parse(text))
    except UnsupportedInput as exc:
        raise UsageError(str(exc)) from None


def require_supported(version: FlinkVersion) -> FlinkVersion:
    """`version`, unless flinkmem does not support it: then a UsageError naming the supported lines."""
    if support_of(version) is Support.UNSUPPORTED:
        raise UsageError(unsupported_message(version))
    return version


def flink_deployments(
    documents: Sequence[Any], kinds: tuple[str, ...] = ("FlinkDeployment",)
) -> list[Mapping[str, Any]]:
    """The objects of `kinds` among the documents, also inside a List."""
    found: list[Mapping[str, Any]] = []
    for doc in documents:
        if not isinstance(doc, Mapping):
            continue
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            found.extend(flink_deployments(doc["items"], kinds))
        elif doc.get("kind") in kinds:
            found.append(doc)
    return found


def parse_dynamic(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"-D expects key=value, got {pair!r}")
        out[key] = value
    return out


def config_file_source(
    path: Path, version: FlinkVersion | None, mode: DeploymentMode, dynamic: Mapping[str, str]
) -> FlinkSource:
    try:
        return from_config_file(str(path), read_text(path), version=version, mode=mode, dynamic=dynamic)
    except ConfigFileError as exc:
        raise UsageError(f"{path}: {exc}") from None


def mode(text: str | None) -> DeploymentMode:
    try:
        return DeploymentMode.parse(text)
    except UnsupportedInput as exc:
        raise UsageError(str(exc)) from None


def resolve_source(args: argparse.Namespace) -> FlinkSource:
    """The source `resolve` works on: a manifest or a Flink configuration file, with -D values on top."""
    dynamic = parse_dynamic(args.dynamic)
    version = parse_version(args.flink_version)
    if not args.config_file:
        return FlinkSource("flags", "-D", "", dynamic, version or LATEST, mode(args.mode))
    path = Path(args.config_file)
    deployments = maybe_deployments(path)
    if not deployments:
        source = config_file_source(path, version, mode(args.mode), dynamic)
        require_supported(source.version)
        return source
    if len(deployments) > 1:
        raise UsageError(f"{path} holds {len(deployments)} FlinkDeployments; use 'flinkmem check' for several")
    try:
        source = from_flinkdeployment(deployments[0])
    except SpecError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return replace(
        source,
        config={**source.config, **dynamic},
        version=version or require_supported(source.version),
        mode=mode(args.mode) if args.mode else source.mode,
    )
