"""The `flinkmem` command line: resolve, check, and serve.

Exit codes: 0 valid, 1 invalid configuration, 2 unusable input (unreadable file, bad YAML, bad
flags). Every failure prints one line on stderr saying what to do.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

from flinkmem import __version__
from flinkmem.deployment import DEFAULT_CONTAINER, SpecError, from_flinkdeployment
from flinkmem.engine import DeploymentMode, FlinkMemError, FlinkVersion, RawValue, UnsupportedInput, resolve_jobmanager
from flinkmem.engine.configfile import ConfigFileError, parse_config_yaml, parse_legacy_flink_conf
from flinkmem.render import memory_table
from flinkmem.settings import add_arguments as add_serve_arguments
from flinkmem.settings import from_arguments as settings_from_arguments
from flinkmem.sizing import container_memory
from flinkmem.validation import validate_deployment

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
    try:
        return _flink_deployments(list(yaml.safe_load_all(_read_text(path))))
    except yaml.YAMLError:
        # A YAML 1.1 loader chokes on some valid YAML 1.2 (like a plain `=`); the Flink parser decides.
        return []


def _parse_version(text: str) -> FlinkVersion:
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


def _resolve_inputs(
    args: argparse.Namespace,
) -> tuple[dict[str, RawValue], FlinkVersion, DeploymentMode, str | None, list[str]]:
    """Config map, version, mode, FLINK_JM_HEAP and input notes, from the file and the flags."""
    config: dict[str, RawValue] = {}
    version_text: str | None = args.flink_version
    mode_text: str | None = args.mode
    legacy_env: str | None = None
    notes: list[str] = []
    if args.config_file:
        path = Path(args.config_file)
        # flink-conf.yaml is not YAML to Flink 1.x but lines of `key: value`, so it is never parsed as YAML.
        deployments = [] if path.name == "flink-conf.yaml" else _maybe_deployments(path)
        if deployments:
            if len(deployments) > 1:
                raise UsageError(f"{path} holds {len(deployments)} FlinkDeployments; use 'flinkmem check' for several")
            try:
                spec = from_flinkdeployment(deployments[0])
            except SpecError as exc:
                raise UsageError(f"{path}: {exc}") from None
            config.update(spec.config)
            version_text = version_text or str(spec.version)
            mode_text = mode_text or spec.mode.value
            legacy_env = spec.legacy_heap_env
            notes.extend(n.message for n in spec.notices)
        elif path.name == "flink-conf.yaml":
            if version_text and _parse_version(version_text).major >= 2:
                raise UsageError("Flink 2.x reads only config.yaml, never flink-conf.yaml; migrate the file first")
            legacy, skipped = parse_legacy_flink_conf(_read_text(path))
            config.update(legacy)
            notes.extend(f"{path}: {s} (Flink skips it)" for s in skipped)
            version_text = version_text or "1.20"
        else:
            try:
                config.update(parse_config_yaml(_read_text(path)))
            except ConfigFileError as exc:
                raise UsageError(f"{path}: {exc}") from None
    config.update(_parse_dynamic(args.dynamic))
    try:
        version = FlinkVersion.parse(version_text)
        mode = DeploymentMode.parse(mode_text)
    except UnsupportedInput as exc:
        raise UsageError(str(exc)) from None
    return config, version, mode, legacy_env, notes


def _dump(data: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(dict(data), sort_keys=False).rstrip()


def cmd_resolve(args: argparse.Namespace) -> int:
    if args.batch:
        if args.config_file or args.dynamic:
            raise UsageError("--batch reads configurations from standard input; drop --config-file and -D")
        try:
            default = FlinkVersion.parse(args.flink_version)
        except UnsupportedInput as exc:
            raise UsageError(str(exc)) from None
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
    if args.jobs is not None:
        raise UsageError("--jobs only applies to --batch")
    config, version, mode, legacy_env, notes = _resolve_inputs(args)
    try:
        memory = resolve_jobmanager(config, version, mode, legacy_env)
        container = container_memory(memory, config)
    except FlinkMemError as exc:
        if args.output != "table":
            print(_dump({"valid": False, "rule": exc.rule.value, "error": exc.message, **exc.to_dict()}, args.output))
        print(f"flinkmem: invalid configuration: {exc.message}", file=sys.stderr)
        return EXIT_INVALID
    if args.output == "table":
        print(memory_table(memory, container))
        for note in notes:
            print(f"Note: {note}")
    else:
        data: dict[str, Any] = {"valid": True, **memory.to_dict(), "container": container.to_dict()}
        data["notices"] = [{"code": n.code, "level": n.level, "message": n.message} for n in memory.notices]
        data["inputNotes"] = notes
        print(_dump(data, args.output))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    invalid = 0
    total = 0
    for name in args.files:
        path = Path(name)
        for doc in _flink_deployments(_load_yaml_documents(path)):
            total += 1
            meta = doc.get("metadata")
            meta = meta if isinstance(meta, Mapping) else {}
            namespace = f"{meta['namespace']}/" if meta.get("namespace") else ""
            label = f"{path}: {namespace}{meta.get('name', '?')}"
            result = validate_deployment(doc, args.container)
            if result.valid and result.memory is not None and result.container is not None:
                print(
                    f"✔ {label}: heap {result.memory.heap} B, total process {result.memory.total_process} B, "
                    f"container {result.container.request}/{result.container.limit}"
                )
            else:
                invalid += 1
                print(f"✘ {label}: {result.reason}")
            for warning in result.warnings:
                print(f"  warning: {warning.message}")
    if total == 0:
        print("flinkmem: no FlinkDeployment found in the given files", file=sys.stderr)
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
    parser = _Parser(prog="flinkmem", description="Resolve and enforce Flink JobManager memory exactly as Flink does.")
    parser.add_argument("--version", action="version", version=f"flinkmem {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    resolve = sub.add_parser("resolve", help="resolve one configuration (or JSON Lines with --batch)")
    resolve.add_argument("-D", dest="dynamic", action="append", default=[], metavar="KEY=VALUE")
    resolve.add_argument("--config-file", metavar="PATH", help="config.yaml, flink-conf.yaml or a FlinkDeployment")
    resolve.add_argument("--flink-version", metavar="V", help="e.g. 1.20, 2.3 or v1_20 (default: 2.3)")
    resolve.add_argument("--mode", choices=["native", "standalone"], help="deployment mode (default: native)")
    resolve.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    resolve.add_argument("--batch", action="store_true", help="JSON Lines on stdin, one result line per input")
    resolve.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="--batch worker processes (default: one per usable CPU when stdin is a file of 1 MiB or more, else 1)",
    )
    resolve.set_defaults(func=cmd_resolve)

    check = sub.add_parser("check", help="validate every FlinkDeployment in the files (for CI)")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--container", default=DEFAULT_CONTAINER, help="JobManager container name")
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
