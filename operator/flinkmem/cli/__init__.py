"""The `flinkmem` command line: `resolve`, `check` and `serve` (see `app`)."""

from flinkmem.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
