"""Flink lines 1.12 to 2.3 against flinkmem: every difference is one of the known line rules.

The line tests download a version's jars when missing (about 20 s and 250 MB each), so they run only
with FLINKMEM_LINES=1 (`make test-lines`). The assembly test at the end needs no network and always runs.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.differential.vectors import version_line
from tests.lines.compare import compare_patches, compare_version
from tests.lines.explain import RULES, explain, line
from tests.support import flinkdist

CASES = int(os.environ.get("FLINKMEM_DIFF_CASES", "2000"))
SEED = int(os.environ.get("FLINKMEM_DIFF_SEED", "20260526"))
online = pytest.mark.skipif(os.environ.get("FLINKMEM_LINES") != "1", reason="set FLINKMEM_LINES=1 (make test-lines)")
# The first line on which flinkmem's current rules (those of 1.20 and 2.x) hold exactly.
FIRST_LINE_AGREEING = "1.19"


@online
@pytest.mark.differential
@pytest.mark.parametrize("version", flinkdist.LINE_VERSIONS)
def test_every_difference_is_a_known_line_rule(version: str, tmp_path: Path) -> None:
    comparison = compare_version(version, CASES, SEED, tmp_path)
    entries = [json.loads(text) for text in (tmp_path / f"{version}.mismatches.jsonl").read_text().splitlines()]
    if line(version) >= line(FIRST_LINE_AGREEING):
        assert not entries, comparison.summary()
    report = explain(version, entries)
    assert report["unexplained"] == 0, json.dumps(report, indent=1)[:6000]


@online
@pytest.mark.differential
@pytest.mark.parametrize("first", flinkdist.FIRST_PATCHES)
def test_first_patch_answers_as_the_newest(first: str, tmp_path: Path) -> None:
    newest = next(v for v in flinkdist.LINE_VERSIONS if version_line(v) == version_line(first))
    result = compare_patches(first, newest, CASES, SEED, tmp_path)
    assert result["differing"] == {}, result


def test_rules_cover_only_lines_before_the_agreeing_one() -> None:
    for rule in RULES:
        assert line(rule.first) <= line(rule.last) < line(FIRST_LINE_AGREEING), rule.name


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
