"""The `flinkmem` command line: resolve, check, and serve.

Exit codes: 0 valid, 1 invalid configuration, 2 unusable input (unreadable file, bad YAML, bad
flags). Every failure prints one line on stderr saying what to do.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import yaml

from flinkmem import __version__
from flinkmem.engine import DeploymentMode, FlinkVersion, UnsupportedInput
from flinkmem.engine.configfile import ConfigFileError
from flinkmem.engine.versions import LATEST
from flinkmem.render import memory_table
from flinkmem.roles import ROLES, role_named
from flinkmem.settings import add_arguments as add_serve_arguments
from flinkmem.settings import from_arguments as settings_from_arguments
from flinkmem.sources.flinkconfig import LEGACY_FILE, from_config_file
from flinkmem.sources.flinkdeployment import DEFAULT_CONTAINER, SpecError, from_flinkdeployment
from flinkmem.sources.model import FlinkSource
from flinkmem.validation import Validation, validate_deployment, validate_role, validate_source

__all__ = ["main"]

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Input flinkmem cannot use at all; exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"flinkmem: {message} (see '{self.prog} --help')\n")


def _load_yaml_documents(path: Path) -> list[Any]:
    text = _read_text(path)
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _maybe_deployments(path: Path) -> list[Mapping[str, Any]]:
    """FlinkDeployments in a file that may also be a Flink config.yaml, which PyYAML cannot always load."""
    if path.name == LEGACY_FILE:
        return []  # not YAML to Flink 1.x but lines of `key: value`, so never parsed as YAML
    try:
        return _flink_deployments(list(yaml.safe_load_all(_read_text(path))))
    except yaml.YAMLError:
        # A YAML 1.1 loader chokes on some valid YAML 1.2 (like a plain `=`); the Flink parser decides.
        return []


def _parse_version(text: str | None) -> FlinkVersion | None:
    if text is None:
        return None
    try:
        return FlinkVersion.parse(text)
    except UnsupportedInput as exc:
        raise UsageError(str(exc)) from None


def _flink_deployments(documents: Sequence[Any]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for doc in documents:
        if not isinstance(doc, Mapping):
            continue
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            found.extend(_flink_deployments(doc["items"]))
        elif doc.get("kind") == "FlinkDeployment":
            found.append(doc)
    return found


def _parse_dynamic(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"-D expects key=value, got {pair!r}")
        out[key] = value
    return out


def _config_file_source(
    path: Path, version: FlinkVersion | None, mode: DeploymentMode, dynamic: Mapping[str, str]
) -> FlinkSource:
    try:
        return from_config_file(str(path), _read_text(path), version=version, mode=mode, dynamic=dynamic)
    except ConfigFileError as exc:
        raise UsageError(f"{path}: {exc}") from None


def _mode(text: str | None) -> DeploymentMode:
    try:
        return DeploymentMode.parse(text)
    except UnsupportedInput as exc:
        raise UsageError(str(exc)) from None


def _resolve_source(args: argparse.Namespace) -> FlinkSource:
    """The source `resolve` works on: a manifest or a Flink configuration file, with -D values on top."""
    dynamic = _parse_dynamic(args.dynamic)
    version = _parse_version(args.flink_version)
    if not args.config_file:
        return FlinkSource("flags", "-D", "", dynamic, version or LATEST, _mode(args.mode))
    path = Path(args.config_file)
    deployments = _maybe_deployments(path)
    if not deployments:
        return _config_file_source(path, version, _mode(args.mode), dynamic)
    if len(deployments) > 1:
        raise UsageError(f"{path} holds {len(deployments)} FlinkDeployments; use 'flinkmem check' for several")
    try:
        source = from_flinkdeployment(deployments[0])
    except SpecError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return replace(
        source,
        config={**source.config, **dynamic},
        version=version or source.version,
        mode=_mode(args.mode) if args.mode else source.mode,
    )


def _dump(data: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(dict(data), sort_keys=False).rstrip()


def _run_batch(args: argparse.Namespace) -> int:
    if args.config_file or args.dynamic:
        raise UsageError("--batch reads configurations from standard input; drop --config-file and -D")
    default = _parse_version(args.flink_version) or LATEST
    # Imported here: worker-process machinery would slow every single, cold `resolve`.
    from concurrent.futures.process import BrokenProcessPool

    from flinkmem.batch import auto_jobs, regular_file_size, run_batch

    source = sys.stdin.buffer
    jobs = args.jobs if args.jobs is not None else auto_jobs(source)
    sys.stdout.flush()
    try:
        # A file is read to its end; anything else may be a program waiting for each answer.
        flush_each = regular_file_size(source) is None
        run_batch(source, sys.stdout.buffer, default, flush_each=flush_each, jobs=jobs)
    except BrokenProcessPool as exc:
        raise UsageError(f"a batch worker process died ({exc}); retry with --jobs 1") from None
    return EXIT_OK


def cmd_resolve(args: argparse.Namespace) -> int:
    if args.batch:
        return _run_batch(args)
    if args.jobs is not None:
        raise UsageError("--jobs only applies to --batch")
    source = _resolve_source(args)
    role = role_named(args.role)
    assert role is not None  # argparse restricts the choices
    result = validate_role(source, role)
    notes = [n.message for n in source.notices]
    memory, container = result.memory, result.container
    if memory is None or container is None:
        refusal = result.refusal
        assert refusal is not None  # nothing resolves only where Flink refuses
        if args.output != "table":
            failure = {"valid": False, "role": role.key, "error": refusal.message, **refusal.to_dict()}
            print(_dump(failure, args.output))
        print(f"flinkmem: invalid configuration: {role}: {refusal.message}", file=sys.stderr)
        return EXIT_INVALID
    # Warnings the engine attached to the memory are in the table already; the rest are the checks'.
    engine_codes = {n.code for n in memory.warnings}
    findings = [w for w in result.warnings if w.code not in engine_codes]
    if args.output == "table":
        print(memory_table(memory, container))
        for finding in findings:
            print(f"Warning: {finding.message}")
        for note in notes:
            print(f"Note: {note}")
        for conflict in result.conflicts:
            print(f"Error ({conflict.code}): {conflict.message}")
    else:
        data: dict[str, Any] = {"valid": result.valid, "role": role.key, **memory.to_dict()}
        data["container"] = container.to_dict()
        data["notices"] = [{"code": n.code, "level": n.level, "message": n.message} for n in memory.notices]
        data["warnings"] = [w.message for w in result.warnings]
        data["conflicts"] = [{"code": c.code, "message": c.message} for c in result.conflicts]
        data["inputNotes"] = notes
        print(_dump(data, args.output))
    if result.conflicts:
        print(f"flinkmem: invalid configuration: {result.conflicts[0].message}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _print_validation(label: str, validation: Validation) -> bool:
    """A line per role (✔, or ✘ with the rule), then the warnings; True when everything is valid."""
    for problem in validation.problems:
        print(f"✘ {label}: {problem.message} (rule: {problem.code})")
    for result in validation.roles:
        memory, container = result.memory, result.container
        if result.valid and memory is not None and container is not None:
            print(
                f"✔ {label}: {result.role}: heap {memory.jvm_heap} B, total process {memory.total_process} B, "
                f"container {container.request}/{container.limit}"
            )
        for conflict in result.conflicts:
            print(f"✘ {label}: {conflict.message} (rule: {conflict.code})")
    for warning in validation.warnings:
        print(f"  warning: {warning.message}")
    return validation.valid


def _check_targets(path: Path, args: argparse.Namespace) -> list[tuple[str, Validation]]:
    """What one file holds: FlinkDeployments (also in a List), or a Flink configuration file."""
    deployments = _maybe_deployments(path)
    if not deployments and path.name != LEGACY_FILE:
        documents = _load_yaml_documents(path)
        if any(isinstance(d, Mapping) and ("kind" in d or "apiVersion" in d) for d in documents):
            return []  # Kubernetes objects, none of them a FlinkDeployment
    if deployments:
        found = []
        for doc in deployments:
            meta = doc.get("metadata")
            meta = meta if isinstance(meta, Mapping) else {}
            namespace = f"{meta['namespace']}/" if meta.get("namespace") else ""
            found.append((f"{path}: {namespace}{meta.get('name', '?')}", validate_deployment(doc, args.container)))
        return found
    source = _config_file_source(path, _parse_version(args.flink_version), _mode(args.mode), {})
    return [(str(path), validate_source(source))]


def cmd_check(args: argparse.Namespace) -> int:
    invalid = 0
    total = 0
    for name in args.files:
        for label, validation in _check_targets(Path(name), args):
            total += 1
            if not _print_validation(label, validation):
                invalid += 1
    if total == 0:
        print("flinkmem: no FlinkDeployment or Flink configuration file found in the given files", file=sys.stderr)
    return EXIT_INVALID if invalid else EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_arguments(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # Imported here: kopf and the Kubernetes client would slow every other command's start-up.
    from flinkmem.serve import serve_forever

    return serve_forever(settings, verbose=args.verbose)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1; use at least one process")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="flinkmem", description="Resolve and enforce Flink process memory exactly as Flink does.")
    parser.add_argument("--version", action="version", version=f"flinkmem {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    resolve = sub.add_parser("resolve", help="resolve one configuration (or JSON Lines with --batch)")
    resolve.add_argument("-D", dest="dynamic", action="append", default=[], metavar="KEY=VALUE")
    resolve.add_argument("--config-file", metavar="PATH", help="config.yaml, flink-conf.yaml or a FlinkDeployment")
    resolve.add_argument("--flink-version", metavar="V", help="e.g. 1.20, 2.3 or v1_20 (default: 2.3)")
    resolve.add_argument("--mode", choices=["native", "standalone"], help="deployment mode (default: native)")
    resolve.add_argument(
        "--role",
        choices=[r.key for r in ROLES],
        default="jobmanager",
        help="the process to resolve (default: jobmanager)",
    )
    resolve.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    resolve.add_argument("--batch", action="store_true", help="JSON Lines on stdin, one result line per input")
    resolve.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="--batch worker processes (default: one per usable CPU when stdin is a file of 1 MiB or more, else 1)",
    )
    resolve.set_defaults(func=cmd_resolve)

    check = sub.add_parser(
        "check", help="validate every FlinkDeployment, config.yaml or flink-conf.yaml in the files (for CI)"
    )
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--container", default=DEFAULT_CONTAINER, help="main container name of Flink pods")
    check.add_argument("--flink-version", metavar="V", help="for configuration files: e.g. 1.20 or 2.3")
    check.add_argument("--mode", choices=["native", "standalone"], help="for configuration files (default: native)")
    check.set_defaults(func=cmd_check)

    serve = sub.add_parser("serve", help="run the admission webhooks and the controller")
    add_serve_arguments(serve)
    serve.add_argument("--verbose", action="store_true", help="debug logging, including a line per admission request")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        print(f"flinkmem: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
