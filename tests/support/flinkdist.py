"""Real Apache Flink, assembled from PyPI, as the referee of the differential tests.

PyPI carries a complete Flink distribution in two packages: `apache-flink-libraries` holds `lib/`,
`opt/`, `plugins/` and the jars of `bin/` (among them `bash-java-utils.jar`), and `apache-flink`
holds the `bin/` start scripts and `conf/`. Both keep that layout below `pyflink/` (wheels) or
`deps/` (sdists). Releases before the split (1.12.5, 1.13.3, 1.13.5) have no
`apache-flink-libraries`; there the `apache-flink` sdist holds everything. This module downloads
them with `pip download --no-deps`, and assembles one Flink home per version under
`$FLINKMEM_CACHE/flink/<version>/`, outside the repository:

    lib/flink-dist-<version>.jar  bin/bash-java-utils.jar  bin/config.sh  bin/jobmanager.sh  conf/ ...

(1.12-1.14 name the jar with its Scala suffix: `lib/flink-dist_2.11-1.14.6.jar`.)

A home counts as installed only once its marker file exists; the marker is written into a staging
directory after every file is in place, and the staging directory is then renamed into place, so
an interrupted run never leaves a half-assembled home behind. The reference harness needs only the
two jars, so a version can also be installed jars-only (`lib/flink-dist*.jar` and
`bin/bash-java-utils.jar`, sealed by a marker of its own); a complete home serves jars-only use too.

`FLINK_VERSIONS` are the versions the whole test suite runs against, complete (start scripts too);
`SUPPORTED_LINE_VERSIONS` the newest patch of every line flinkmem supports, whose jars the
differential suites run too (`make flink` fetches both); `LINE_VERSIONS` the newest patch of every
line from 1.12 to 2.3 and `FIRST_PATCHES` the first patch PyPI serves of each line, for the
comparison of patches (`python -m tests.differential.patches`).

    python -m tests.support.flinkdist ensure [VERSION ...]   # download if needed, print the paths
    python -m tests.support.flinkdist ensure --supported --jars-only   # what the differential suites run
    python -m tests.support.flinkdist ensure --lines --jars-only   # the jars of every line
    python -m tests.support.flinkdist path VERSION           # print the home, without downloading
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Final

__all__ = [
    "FIRST_PATCHES",
    "FLINK_VERSIONS",
    "KNOWN_VERSIONS",
    "LINE_VERSIONS",
    "SUPPORTED_LINE_VERSIONS",
    "FlinkDistError",
    "bash_java_utils_jar",
    "cache_root",
    "ensure",
    "ensure_jars",
    "flink_dist_jar",
    "flink_home",
    "is_installed",
    "jars_installed",
    "main",
    "script",
]

FLINK_VERSIONS: Final = ("1.20.3", "2.3.0")
# The newest patch of every line PyPI serves (1.12 only as 1.12.5, in the pre-split `apache-flink`).
LINE_VERSIONS: Final = (
    "1.12.5",
    "1.13.6",
    "1.14.6",
    "1.15.4",
    "1.16.3",
    "1.17.2",
    "1.18.1",
    "1.19.3",
    "1.20.5",
    "2.0.2",
    "2.1.3",
    "2.2.1",
    "2.3.0",
)
# The newest patch of every line flinkmem supports (`flinkmem.engine.lines.LINES`; a test holds the two
# together). 1.12 is measured (LINE_VERSIONS) but not supported.
SUPPORTED_LINE_VERSIONS: Final = LINE_VERSIONS[1:]
# The first patch of each line PyPI serves with its jars. 1.12 (1.12.5) and 1.13 (1.13.6) have only
# one: the `apache-flink` sdists of 1.13.3 and 1.13.5 carry no jars and depended on an
# `apache-flink-libraries` PyPI no longer serves; 2.3.0 is first and newest at once.
FIRST_PATCHES: Final = (
    "1.14.0",
    "1.15.0",
    "1.16.0",
    "1.17.0",
    "1.18.0",
    "1.19.0",
    "1.20.0",
    "2.0.0",
    "2.1.0",
    "2.2.0",
)
KNOWN_VERSIONS: Final = tuple(
    sorted(
        {*FLINK_VERSIONS, *LINE_VERSIONS, *FIRST_PATCHES},
        key=lambda version: tuple(int(part) for part in version.split(".")),
    )
)

# The two PyPI projects that together make up a distribution, and the folders each contributes.
PACKAGES: Final = ("apache-flink-libraries", "apache-flink")
LIBRARIES, SCRIPTS = PACKAGES
# The two jars the reference harness compiles and runs against (relative to the Flink home).
JAR_PATTERNS: Final = ("lib/flink-dist*.jar", "bin/bash-java-utils.jar")
DIST_FOLDERS: Final = frozenset({"bin", "conf", "lib", "opt", "plugins", "licenses", "log"})
# Archive folders under which the distribution layout starts (wheel: pyflink/, sdist: deps/).
LAYOUT_ROOTS: Final = ("pyflink", "deps")

MARKER: Final = ".flinkmem-complete"
JARS_MARKER: Final = ".flinkmem-jars"
# apache-flink ships only binary wheels per platform; its scripts are the same in every one of them,
# so when no wheel fits this interpreter, the one for this platform is fetched instead.
FALLBACK_PLATFORM: Final = ("manylinux2014_x86_64", "3.11")
REQUIRED_FILES: Final = (
    "bin/bash-java-utils.jar",
    "bin/config.sh",
    "bin/jobmanager.sh",
    "bin/kubernetes-jobmanager.sh",
    "bin/flink-console.sh",
    "bin/bash-java-utils.sh",
    "conf",
)
# Scripts that older lines do not have: the native Kubernetes scripts came with 1.13 (FLINK-21128;
# 1.12's pods run a java command the client assembles), bash-java-utils.sh with 1.19 (FLIP-366).
FIRST_LINE_WITH: Final = {"bin/kubernetes-jobmanager.sh": (1, 13), "bin/bash-java-utils.sh": (1, 19)}


def _required_files(version: str) -> list[str]:
    line = tuple(int(part) for part in version.split(".")[:2])
    return [item for item in REQUIRED_FILES if line >= FIRST_LINE_WITH.get(item, (0, 0))]


class FlinkDistError(RuntimeError):
    """Flink could not be downloaded or assembled."""


def cache_root() -> Path:
    """`$FLINKMEM_CACHE`, or `~/.cache/flinkmem`: everything downloaded or built lives here."""
    configured = os.environ.get("FLINKMEM_CACHE", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "flinkmem"


def _check_version(version: str) -> str:
    if version not in KNOWN_VERSIONS:
        raise FlinkDistError(f"unsupported Flink version {version!r}; known: {', '.join(KNOWN_VERSIONS)}")
    return version


def _home_path(version: str) -> Path:
    return cache_root() / "flink" / _check_version(version)


def is_installed(version: str) -> bool:
    """Whether the Flink home of `version` is completely assembled (no download is attempted)."""
    return (_home_path(version) / MARKER).is_file()


def jars_installed(version: str) -> bool:
    """Whether the two harness jars of `version` are there (a complete or a jars-only home)."""
    home = _home_path(version)
    return (home / MARKER).is_file() or (home / JARS_MARKER).is_file()


def flink_home(version: str, *, download: bool = True) -> Path:
    """The FLINK_HOME of `version`; downloads and assembles it first unless it is already there.

    With `download=False` a missing home raises FlinkDistError instead.
    """
    if is_installed(version):
        return _home_path(version)
    if not download:
        raise FlinkDistError(f"Flink {version} is not installed; run `make flink`")
    return ensure(version)


def flink_dist_jar(version: str) -> Path:
    """`lib/flink-dist-<version>.jar`: the runtime, configuration and Kubernetes client classes.

    Downloads only the jars when the version is not there at all."""
    return _single(ensure_jars(version) / "lib", "flink-dist*.jar")


def bash_java_utils_jar(version: str) -> Path:
    """`bin/bash-java-utils.jar`: BashJavaUtils, as the start scripts run it."""
    return ensure_jars(version) / "bin" / "bash-java-utils.jar"


def script(version: str, name: str) -> Path:
    """A start script of the distribution, such as `jobmanager.sh` or `kubernetes-jobmanager.sh`."""
    path = flink_home(version) / "bin" / name
    if not path.is_file():
        raise FlinkDistError(f"Flink {version} has no bin/{name}")
    return path


def _single(folder: Path, pattern: str) -> Path:
    matches = sorted(folder.glob(pattern))
    if len(matches) != 1:
        raise FlinkDistError(f"expected exactly one {pattern} in {folder}, found {len(matches)}")
    return matches[0]


# --------------------------------------------------------------------------------------------------
# Download and assembly


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so that concurrent test runs assemble a version only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure(version: str) -> Path:
    """Downloads and assembles Flink `version` unless it is complete already; returns its home."""
    return _ensure(version, jars_only=False)


def ensure_jars(version: str) -> Path:
    """The home of `version` with at least `lib/flink-dist*.jar` and `bin/bash-java-utils.jar`;
    downloads only the archive that holds them when neither a complete nor a jars-only home is there."""
    return _ensure(version, jars_only=True)


def _ensure(version: str, *, jars_only: bool) -> Path:
    home = _home_path(version)
    if (home / MARKER).is_file() or (jars_only and (home / JARS_MARKER).is_file()):
        return home
    with _locked(home.parent / f".{version}.lock"):
        if (home / MARKER).is_file() or (jars_only and (home / JARS_MARKER).is_file()):
            return home
        with tempfile.TemporaryDirectory(prefix=f".{version}-", dir=home.parent) as work:
            downloads = Path(work) / "downloads"
            staging = Path(work) / "home"
            staging.mkdir()
            started = time.monotonic()
            archives = [_download_jars(version, downloads)]
            if not jars_only and archives[0].parent.name != SCRIPTS:  # a pre-split sdist holds the scripts too
                archives.append(_download(SCRIPTS, version, downloads))
            downloaded = time.monotonic()
            for archive in archives:
                _extract_distribution(archive, staging, jars_only=jars_only)
            timings = {
                "downloadSeconds": round(downloaded - started, 1),
                "extractSeconds": round(time.monotonic() - downloaded, 1),
                "downloadBytes": sum(archive.stat().st_size for archive in archives),
            }
            _finish_home(staging, version, archives, jars_only=jars_only, timings=timings)
            if home.exists():  # an incomplete home from an older, interrupted layout, or jars-only
                shutil.rmtree(home)
            staging.rename(home)
    return home


def _pip_download(args: Sequence[str], dest: Path) -> Path | None:
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    command += ["--quiet", "--dest", str(dest), *args]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        return None
    added = sorted(set(dest.iterdir()) - before)
    return added[0] if added else None


def _download(package: str, version: str, downloads: Path, *, sdist_only: bool = False) -> Path:
    """One archive of `package==version`: a wheel if any fits, else the sdist."""
    archive = _try_download(package, version, downloads, sdist_only=sdist_only)
    if archive is None:
        raise FlinkDistError(f"pip could not download {package}=={version} (tried wheels and the sdist)")
    return archive


def _try_download(package: str, version: str, downloads: Path, *, sdist_only: bool = False) -> Path | None:
    requirement = f"{package}=={version}"
    platform, python = FALLBACK_PLATFORM
    attempts: list[list[str]] = [
        ["--only-binary", ":all:", requirement],
        ["--only-binary", ":all:", "--platform", platform, "--python-version", python, requirement],
        ["--no-binary", ":all:", requirement],
    ]
    for attempt in attempts[2:] if sdist_only else attempts:
        archive = _pip_download(attempt, downloads / package)
        if archive is not None:
            return archive
    return None


def _download_jars(version: str, downloads: Path) -> Path:
    """The archive that holds the jars: `apache-flink-libraries`, else (before the split) the
    `apache-flink` sdist (its wheels carry only Python code and scripts)."""
    archive = _try_download(LIBRARIES, version, downloads)
    if archive is None:
        archive = _try_download(SCRIPTS, version, downloads, sdist_only=True)
    if archive is None:
        raise FlinkDistError(f"pip could not download {LIBRARIES}=={version}, nor the sdist of {SCRIPTS}=={version}")
    return archive


def _distribution_path(name: str) -> PurePosixPath | None:
    """Where an archive entry goes in FLINK_HOME, or None when it is not part of the distribution."""
    parts = PurePosixPath(name).parts
    if any(part in ("..", "") for part in parts) or name.startswith("/"):
        return None
    for index, part in enumerate(parts[:-1]):
        if part in LAYOUT_ROOTS:
            rest = parts[index + 1 :]
            if len(rest) >= 2 and rest[0] in DIST_FOLDERS:
                return PurePosixPath(*rest)
            return None
    return None


def _write(target_root: Path, relative: PurePosixPath, source: IO[bytes], mode: int) -> None:
    destination = target_root.joinpath(*relative.parts)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with destination.open("wb") as sink:
        shutil.copyfileobj(source, sink, length=1 << 20)
    executable = mode & 0o111 or relative.suffix == ".sh" or relative.parent.name == "bin"
    destination.chmod(0o755 if executable and relative.suffix != ".jar" else 0o644)


def _wanted(relative: PurePosixPath | None, jars_only: bool) -> bool:
    return relative is not None and (not jars_only or any(relative.match(pattern) for pattern in JAR_PATTERNS))


def _extract_distribution(archive: Path, staging: Path, *, jars_only: bool = False) -> None:
    name = archive.name
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                relative = _distribution_path(info.filename)
                if relative is None or info.is_dir() or not _wanted(relative, jars_only):
                    continue
                with zipped.open(info) as source:
                    _write(staging, relative, source, (info.external_attr >> 16) & 0o777)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(archive) as tarred:
            for entry in tarred:
                relative = _distribution_path(entry.name)
                if relative is None or not entry.isfile() or not _wanted(relative, jars_only):
                    continue
                member = tarred.extractfile(entry)
                if member is not None:
                    with member:
                        _write(staging, relative, member, entry.mode)
    else:
        raise FlinkDistError(f"unknown archive format: {archive}")


def _finish_home(
    staging: Path,
    version: str,
    archives: Sequence[Path],
    *,
    jars_only: bool = False,
    timings: Mapping[str, float] | None = None,
) -> None:
    """Checks the assembled home and seals it with the marker file (the jars-only one if `jars_only`)."""
    missing = [] if jars_only else [item for item in _required_files(version) if not (staging / item).exists()]
    if not jars_only:
        (staging / "log").mkdir(exist_ok=True)
    if not (staging / "bin" / "bash-java-utils.jar").is_file():
        missing.append("bin/bash-java-utils.jar")
    # 1.12-1.14 carry the Scala suffix: flink-dist_2.11-1.14.6.jar.
    dist_jars = list((staging / "lib").glob(f"flink-dist-{version}.jar"))
    dist_jars += (staging / "lib").glob(f"flink-dist_*-{version}.jar")
    if len(dist_jars) != 1:
        missing.append(f"lib/flink-dist-{version}.jar")
    if missing:
        raise FlinkDistError(f"Flink {version} from PyPI lacks {', '.join(sorted(set(missing)))}")
    marker = {"version": version, "archives": [archive.name for archive in archives], **(timings or {})}
    (staging / (JARS_MARKER if jars_only else MARKER)).write_text(json.dumps(marker, indent=2) + "\n")


# --------------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.flinkdist", description="Real Flink from PyPI, for the differential tests."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ensure_cmd = commands.add_parser("ensure", help="download and assemble Flink if needed; print the paths")
    ensure_cmd.add_argument("versions", nargs="*", metavar="VERSION", help=f"default: {' '.join(FLINK_VERSIONS)}")
    ensure_cmd.add_argument("--lines", action="store_true", help="the newest patch of every line (LINE_VERSIONS)")
    ensure_cmd.add_argument(
        "--supported", action="store_true", help="the newest patch of every supported line (SUPPORTED_LINE_VERSIONS)"
    )
    ensure_cmd.add_argument("--first-patches", action="store_true", help="the first patch of every line")
    ensure_cmd.add_argument(
        "--jars-only", action="store_true", help="only flink-dist and bash-java-utils (all the harness needs)"
    )
    path_cmd = commands.add_parser("path", help="print the home of an installed version")
    path_cmd.add_argument("version", choices=KNOWN_VERSIONS)
    args = parser.parse_args(argv)
    try:
        if args.command == "path":
            print(flink_home(args.version, download=False))
            return 0
        versions = list(args.versions)
        versions += LINE_VERSIONS if args.lines else ()
        versions += SUPPORTED_LINE_VERSIONS if args.supported else ()
        versions += FIRST_PATCHES if args.first_patches else ()
        for version in dict.fromkeys(versions or FLINK_VERSIONS):
            _check_version(version)
            fresh = not (jars_installed(version) if args.jars_only else is_installed(version))
            home = ensure_jars(version) if args.jars_only else ensure(version)
            state = "installed" if fresh else "present"
            print(f"Flink {version} ({state}{', jars only' if args.jars_only else ''}): FLINK_HOME={home}")
            print(f"  flink-dist:      {flink_dist_jar(version)}")
            print(f"  bash-java-utils: {bash_java_utils_jar(version)}")
    except FlinkDistError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
