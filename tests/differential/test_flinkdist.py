"""The assembly of a Flink home from PyPI archives (`tests.support.flinkdist`), offline: what the
differential suites' referee is built from."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from tests.support import flinkdist


def _tar_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def test_jars_only_assembly_of_an_sdist_with_underscores_and_a_scala_suffix(tmp_path: Path) -> None:
    """An sdist whose top folder is `apache_flink_libraries-1.14.6/` and whose jar carries `_2.11`."""
    sdist = tmp_path / "apache_flink_libraries-1.14.6.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        top = "apache_flink_libraries-1.14.6/deps"
        _tar_member(archive, f"{top}/lib/flink-dist_2.11-1.14.6.jar", b"dist")
        _tar_member(archive, f"{top}/lib/flink-table_2.11-1.14.6.jar", b"table")
        _tar_member(archive, f"{top}/bin/bash-java-utils.jar", b"utils")
        _tar_member(archive, f"{top}/bin/config.sh", b"#!/bin/bash")
        _tar_member(archive, f"{top}/opt/flink-python_2.11-1.14.6.jar", b"python")
    staging = tmp_path / "home"
    staging.mkdir()
    flinkdist._extract_distribution(sdist, staging, jars_only=True)
    flinkdist._finish_home(staging, "1.14.6", [sdist], jars_only=True)
    kept = sorted(str(path.relative_to(staging)) for path in staging.rglob("*") if path.is_file())
    assert kept == [flinkdist.JARS_MARKER, "bin/bash-java-utils.jar", "lib/flink-dist_2.11-1.14.6.jar"]


def test_every_supported_line_has_one_version_to_run() -> None:
    """The differential suites run one version per line flinkmem supports (`engine.lines.LINES`)."""
    from flinkmem.engine.lines import LINES
    from tests.differential.lines import VERSIONS

    def line(version: str) -> tuple[int, int]:
        major, minor = version.split(".")[:2]
        return int(major), int(minor)

    assert [line(version) for version in flinkdist.SUPPORTED_LINE_VERSIONS] == list(LINES)
    assert {line(version) for version in VERSIONS} == set(LINES)
    assert set(flinkdist.FLINK_VERSIONS) <= set(VERSIONS)
