"""`flinkmem check`: every FlinkDeployment, FlinkBlueGreenDeployment (its template, as the FlinkDeployment it
deploys) and Flink configuration file in the files, with the webhooks' rules.

Exit codes: 1 when anything is invalid; otherwise 2 when a FlinkDeployment or file names a Flink line
flinkmem does not support (it is reported, not checked); else 0. A line newer than the newest verified
one is checked with that line's rules, its conflicts reported as warnings (as the webhook admits it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from flinkmem.cli.inputs import (
    UsageError,
    config_file_source,
    load_yaml_documents,
    maybe_deployments,
    mode,
    parse_version,
)
from flinkmem.decisions.bluegreen import validate_bluegreen
from flinkmem.decisions.redaction import redact
from flinkmem.decisions.validation import LINE_UNSUPPORTED, Validation, validate_deployment, validate_source
from flinkmem.sources.bluegreen import BLUEGREEN_KIND
from flinkmem.sources.flinkconfig import LEGACY_FILE

__all__ = ["cmd_check"]

EXIT_OK, EXIT_INVALID, EXIT_UNSUPPORTED = 0, 1, 2


def _print_validation(label: str, validation: Validation) -> bool:
    """A line per role (✔, or ✘ with the rule), then the warnings; True when everything is valid."""
    for problem in validation.problems:
        print(redact(f"✘ {label}: {problem.message} (rule: {problem.code})"))
    for result in validation.roles:
        memory, container = result.memory, result.container
        if result.valid and memory is not None and container is not None:
            print(
                f"✔ {label}: {result.role}: heap {memory.jvm_heap} B, total process {memory.total_process} B, "
                f"container {container.request}/{container.limit}"
            )
        for conflict in result.conflicts:
            print(redact(f"✘ {label}: {conflict.message} (rule: {conflict.code})"))
    for warning in validation.warnings:
        print(redact(f"  warning: {warning.message}"))
    return validation.valid


def _check_targets(path: Path, args: argparse.Namespace) -> list[tuple[str, Validation]]:
    """What one file holds: FlinkDeployments and blue/green deployments (also in a List), or a Flink
    configuration file."""
    deployments = maybe_deployments(path, ("FlinkDeployment", BLUEGREEN_KIND))
    if not deployments and path.name != LEGACY_FILE:
        try:
            documents = load_yaml_documents(path)
        except UsageError:
            documents = []  # not YAML that PyYAML reads (or too large for a manifest): Flink's parser decides
        if any(isinstance(d, Mapping) and ("kind" in d or "apiVersion" in d) for d in documents):
            return []  # Kubernetes objects, none of them a FlinkDeployment
    if deployments:
        found = []
        for doc in deployments:
            meta = doc.get("metadata")
            meta = meta if isinstance(meta, Mapping) else {}
            namespace = f"{meta['namespace']}/" if meta.get("namespace") else ""
            validate = validate_bluegreen if doc.get("kind") == BLUEGREEN_KIND else validate_deployment
            found.append((f"{path}: {namespace}{meta.get('name', '?')}", validate(doc, args.container)))
        return found
    source = config_file_source(path, parse_version(args.flink_version), mode(args.mode), {})
    return [(str(path), validate_source(source))]


def cmd_check(args: argparse.Namespace) -> int:
    invalid = 0
    unchecked = 0
    total = 0
    for name in args.files:
        for label, validation in _check_targets(Path(name), args):
            total += 1
            if not _print_validation(label, validation):
                invalid += 1
            elif any(note.code == LINE_UNSUPPORTED for note in validation.notes):
                unchecked += 1
    if total == 0:
        print("flinkmem: no FlinkDeployment or Flink configuration file found in the given files", file=sys.stderr)
    if invalid:
        return EXIT_INVALID
    if unchecked:
        print(f"flinkmem: {unchecked} not checked: their Flink line is not supported", file=sys.stderr)
        return EXIT_UNSUPPORTED
    return EXIT_OK
