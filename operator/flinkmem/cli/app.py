"""The `flinkmem` command line: resolve, check, and serve.

Exit codes: 0 valid, 1 invalid configuration, 2 unusable input (unreadable file, bad YAML, bad
flags, a Flink line flinkmem does not support). Every failure prints one line on stderr saying what
to do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from flinkmem import __version__
from flinkmem.cli.inputs import UsageError
from flinkmem.cli.resolve import cmd_resolve
from flinkmem.conventions import DEFAULT_CONTAINER
from flinkmem.engine.lines import EXACT_RANGE, NEWEST
from flinkmem.runtime.settings import add_arguments as add_serve_arguments
from flinkmem.runtime.settings import from_arguments as settings_from_arguments
from flinkmem.sources.roles import ROLES

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_USAGE = 0, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"flinkmem: {message} (see '{self.prog} --help')\n")


def cmd_check(args: argparse.Namespace) -> int:
    # Imported here: the FlinkDeployment and blue/green decisions would slow every cold `resolve`.
    from flinkmem.cli.check import cmd_check as check

    return check(args)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_arguments(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # Imported here: kopf and aiohttp would slow every other command's start-up.
    from flinkmem.runtime.serve import serve_forever

    return serve_forever(settings, verbose=args.verbose)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1; use at least one process")
    return value


_VERSION_HELP = (
    f"the Flink line, {EXACT_RANGE} (exact), e.g. 1.17, 1.20.3, v1_20, 2.3 or v2_x; a newer 2.x line is "
    f"resolved with {NEWEST}'s rules and a warning"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="flinkmem", description="Resolve and enforce Flink process memory exactly as Flink does.")
    parser.add_argument("--version", action="version", version=f"flinkmem {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    resolve = sub.add_parser("resolve", help="resolve one configuration (or JSON Lines with --batch)")
    resolve.add_argument("-D", dest="dynamic", action="append", default=[], metavar="KEY=VALUE")
    resolve.add_argument("--config-file", metavar="PATH", help="config.yaml, flink-conf.yaml or a FlinkDeployment")
    resolve.add_argument("--flink-version", metavar="V", help=_VERSION_HELP + " (default: the newest, 2.3)")
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
    check.add_argument("--flink-version", metavar="V", help="for configuration files: " + _VERSION_HELP)
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
