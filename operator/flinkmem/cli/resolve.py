"""`flinkmem resolve`: one configuration as a breakdown (or JSON/YAML), or JSON Lines with `--batch`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from flinkmem.cli.inputs import UsageError, parse_version, resolve_source
from flinkmem.cli.render import memory_table
from flinkmem.decisions.redaction import redact, redact_values
from flinkmem.decisions.validation import validate_role
from flinkmem.engine.versions import LATEST
from flinkmem.sources.roles import role_named

__all__ = ["EXIT_INVALID", "EXIT_OK", "cmd_resolve"]

EXIT_OK, EXIT_INVALID = 0, 1


def _dump(data: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(dict(data), sort_keys=False).rstrip()


def _run_batch(args: argparse.Namespace) -> int:
    if args.config_file or args.dynamic:
        raise UsageError("--batch reads configurations from standard input; drop --config-file and -D")
    default = parse_version(args.flink_version) or LATEST
    # Imported here: worker-process machinery would slow every single, cold `resolve`.
    from concurrent.futures.process import BrokenProcessPool

    from flinkmem.cli.batch import auto_jobs, regular_file_size, run_batch

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
    source = resolve_source(args)
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
            print(_dump(redact_values(failure), args.output))
        print(redact(f"flinkmem: invalid configuration: {role}: {refusal.message}"), file=sys.stderr)
        return EXIT_INVALID
    # Warnings the engine attached to the memory are in the table already; the rest are the checks'.
    engine_codes = {n.code for n in memory.warnings}
    findings = [w for w in result.warnings if w.code not in engine_codes]
    if args.output == "table":
        print(redact(memory_table(memory, container)))
        for finding in findings:
            print(redact(f"Warning: {finding.message}"))
        for note in notes:
            print(redact(f"Note: {note}"))
        for conflict in result.conflicts:
            print(redact(f"Error ({conflict.code}): {conflict.message}"))
    else:
        data: dict[str, Any] = {"valid": result.valid, "role": role.key, **memory.to_dict()}
        data["container"] = container.to_dict()
        data["notices"] = [{"code": n.code, "level": n.level, "message": n.message} for n in memory.notices]
        data["warnings"] = [w.message for w in result.warnings]
        data["conflicts"] = [{"code": c.code, "message": c.message} for c in result.conflicts]
        data["inputNotes"] = notes
        print(_dump(redact_values(data), args.output))
    if result.conflicts:
        print(redact(f"flinkmem: invalid configuration: {result.conflicts[0].message}"), file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK
