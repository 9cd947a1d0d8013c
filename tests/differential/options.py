"""The option keys, defaults and fallback keys that matter for memory, per Flink line.

    python -m tests.differential.options [--versions V ...] [--all]     (make lines-options)

For a new Flink line (or patch), before adding it to `flinkmem.engine.lines`: which memory-related
option keys, defaults and deprecated keys it changes. Runs `optiondump/OptionDump.java` (reflection
only, so one source serves every line; not in `java/`, which the reference harness compiles) against
each version's flink-dist jar and prints, for every option of interest whose key, default, type or
fallback keys are not the same on every line, one row per line where it changes. `--all` prints the
options that never change too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from tests.differential import flinkref
from tests.support import flinkdist

__all__ = ["OPTION_CLASSES", "dump", "interesting", "main"]

SOURCE: Final = Path(__file__).parent / "optiondump" / "OptionDump.java"
OPTION_CLASSES: Final = (
    "org.apache.flink.configuration.TaskManagerOptions",
    "org.apache.flink.configuration.JobManagerOptions",
    "org.apache.flink.configuration.NettyShuffleEnvironmentOptions",
    "org.apache.flink.configuration.ExternalResourceOptions",
    "org.apache.flink.configuration.ClusterOptions",
    "org.apache.flink.configuration.CoreOptions",
    "org.apache.flink.kubernetes.configuration.KubernetesConfigOptions",
)
PREFIXES: Final = (
    "taskmanager.memory.",
    "taskmanager.network.memory.",
    "taskmanager.network.numberOfBuffers",
    "taskmanager.heap",
    "jobmanager.memory.",
    "jobmanager.heap",
    "taskmanager.cpu",
    "taskmanager.numberOfTaskSlots",
    "kubernetes.jobmanager.cpu",
    "kubernetes.taskmanager.cpu",
    "kubernetes.jobmanager.memory",
    "kubernetes.taskmanager.memory",
    "external-resource",
    "env.java.",
    "cluster.fine-grained",
    "cluster.declarative",
)
Option = dict[str, Any]


def _compiled(work: Path) -> Path:
    javac = flinkref._jdk_tool("javac")
    subprocess.run([javac, "-nowarn", "-d", str(work), str(SOURCE)], check=True, capture_output=True)
    return work


def dump(version: str, classes: Path) -> list[Option]:
    """Every ConfigOption of OPTION_CLASSES in `version` (fields as OptionDump prints them)."""
    classpath = f"{classes}:{flinkdist.flink_dist_jar(version)}"
    command = [flinkref.java_executable(), "-Xmx256m", "-cp", classpath, "OptionDump", *OPTION_CLASSES]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in completed.stdout.splitlines()]


def interesting(option: Option) -> bool:
    keys = [option.get("key", ""), *(fallback["key"] for fallback in option.get("fallbackKeys", []))]
    return any(str(key).startswith(PREFIXES) for key in keys)


def _describe(option: Option | None) -> str:
    if option is None:
        return "(absent)"
    fallbacks = ", ".join(f"{f['key']}{'' if f['deprecated'] else ' (fallback)'}" for f in option["fallbackKeys"])
    text = f"default {option['default']} ({option['type']})"
    return text + (f"; deprecated keys: {fallbacks}" if fallbacks else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential.options", description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", nargs="+", default=list(flinkdist.LINE_VERSIONS), metavar="V")
    parser.add_argument("--all", action="store_true", help="also the options that are the same on every line")
    args = parser.parse_args(argv)
    by_version: dict[str, dict[str, Option]] = {}
    with tempfile.TemporaryDirectory() as work:
        classes = _compiled(Path(work))
        for version in args.versions:
            options = [option for option in dump(version, classes) if "key" in option and interesting(option)]
            by_version[version] = {option["key"]: option for option in options}
    keys = sorted({key for options in by_version.values() for key in options})
    for key in keys:
        texts = [(version, _describe(by_version[version].get(key))) for version in args.versions]
        if not args.all and len({text for _, text in texts}) == 1:
            continue
        print(f"{key}:")
        previous = None
        for version, text in texts:
            if text != previous:
                print(f"  from {version}: {text}")
            previous = text
    return 0


if __name__ == "__main__":
    sys.exit(main())
