"""Which configuration file each line reads, and how it reads lists from it, against real Flink.

Flink's own launcher (`BashJavaUtils GET_TM_RESOURCE_PARAMS --configDir`, what `taskmanager.sh` runs)
loads a conf directory holding `flink-conf.yaml`, `config.yaml` or both. Up to 1.18 it reads only
`flink-conf.yaml`; 1.19 and 1.20 read `flink-conf.yaml` if it exists, else `config.yaml`, and read a
list option as a YAML sequence only from `config.yaml`; 2.x reads only `config.yaml`
(`flinkmem.engine.lines`: config files, list syntax). flinkmem reads the same files from a ConfigMap
(`sources.flinkconfig`) and from disk (the CLI) and must give the launcher's JVM flags and dynamic
configs, or fail where the launcher finds no file it reads.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

import pytest

from flinkmem.decisions.validation import validate_role
from flinkmem.engine import DeploymentMode, FlinkVersion
from flinkmem.engine.configfile import ConfigFileError
from flinkmem.sources.flinkconfig import ConfigMapError, from_config_file, from_flink_configmap, read_configmap
from flinkmem.sources.model import FlinkSource, MainContainer
from flinkmem.sources.roles import TASKMANAGER
from tests.differential import flinkref
from tests.support import flinkdist

pytestmark = pytest.mark.differential

# A line that reads only flink-conf.yaml, the two that read both, and two that read only config.yaml.
VERSIONS: Final = ("1.18.1", "1.19.3", "1.20.3", "2.0.2", "2.3.0")
RESULT: Final = "BASH_JAVA_UTILS_EXEC_RESULT:"
# The same options in both files, apart from the process size: which file won shows in the answer.
RESOURCES: Final = (
    "external-resources: [gpu, fpga]\nexternal-resource.gpu.amount: 1\nexternal-resource.fpga.amount: 2\n"
)
FILES: Final = {
    "flink-conf.yaml": "taskmanager.memory.process.size: 4g\n" + RESOURCES,
    "config.yaml": "taskmanager.memory.process.size: 3g\n" + RESOURCES,
}
SETUPS: Final = (("flink-conf.yaml",), ("config.yaml",), ("flink-conf.yaml", "config.yaml"))


def launcher(version: str, conf: Path) -> tuple[str, str] | None:
    """BashJavaUtils' JVM flags and dynamic configs for `conf`, or None when it cannot load it."""
    classpath = f"{flinkdist.flink_dist_jar(version)}:{flinkdist.bash_java_utils_jar(version)}"
    command = [flinkref.java_executable(), *flinkref.JVM_OPTIONS, "-cp", classpath]
    command += ["org.apache.flink.runtime.util.bash.BashJavaUtils", "GET_TM_RESOURCE_PARAMS", "--configDir", str(conf)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    results = [line[len(RESULT) :] for line in completed.stdout.splitlines() if line.startswith(RESULT)]
    if completed.returncode != 0:
        assert "does not exist" in completed.stdout + completed.stderr, completed.stdout + completed.stderr
        return None
    jvm, dynamic = results[-2:]
    return jvm, dynamic


def answer(source: FlinkSource) -> tuple[str, str]:
    result = validate_role(source, TASKMANAGER)
    assert result.memory is not None, result.conflicts
    return result.memory.jvm_args, result.memory.dynamic_configs


@pytest.mark.parametrize("setup", SETUPS, ids="+".join)
@pytest.mark.parametrize("version", VERSIONS)
def test_the_file_each_line_reads_and_its_lists(version: str, setup: tuple[str, ...], tmp_path: Path) -> None:
    for name in setup:
        (tmp_path / name).write_text(FILES[name])
    expected = launcher(version, tmp_path)
    line = FlinkVersion.parse(version)
    configmap = read_configmap(
        {"metadata": {"name": "flink-config-c", "namespace": "n"}, "data": {name: FILES[name] for name in setup}}
    )
    try:
        source = from_flink_configmap(
            configmap,
            mode=DeploymentMode.STANDALONE,
            pod_annotations={},
            image=None,
            role_key=TASKMANAGER.key,
            container=MainContainer(),
            version=line,
        )
    except ConfigMapError:
        assert expected is None, f"Flink {version} reads {setup}, flinkmem found no file"
    else:
        assert expected is not None, f"Flink {version} reads none of {setup}, flinkmem read {source.config_file}"
        assert answer(source) == expected
    if len(setup) == 1:
        # The CLI's file on disk: refused where the line never reads a file of that name.
        try:
            from_disk = from_config_file(
                str(tmp_path / setup[0]), FILES[setup[0]], version=line, mode=DeploymentMode.STANDALONE
            )
        except ConfigFileError:
            assert expected is None
        else:
            assert expected is not None and answer(from_disk) == expected
