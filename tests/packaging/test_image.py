"""The container image, built (``make image``: hack/image.sh, podman on a local stand-in for the base)
and run the way the chart runs it: UID 65532, read-only root filesystem, a writable /tmp only.

The fixture builds the image of the current sources if it is missing or stale (a few minutes the
first time on a fresh machine, nothing when unchanged). What the image holds is measured and printed,
never asserted as a size.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.packaging.chart import REPO_ROOT, find, render

PODMAN = ["podman", "--runtime=runc", "--cgroup-manager=cgroupfs"]
# As the chart's securityContext: user, read-only root, no capabilities, an emptyDir on /tmp.
RESTRICTED = [
    "--rm",
    "--network=none",
    "--user=65532:65532",
    "--read-only",
    "--read-only-tmpfs=false",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--tmpfs=/tmp:rw,size=64m",
    "--ulimit=nofile=4096:4096",
    "--ulimit=nproc=4096:4096",
]


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None and os.geteuid() != 0:
        pytest.skip("the image needs podman, runc and mmdebstrap, which only root can install here: run make image")
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "image.sh")], capture_output=True, text=True, timeout=3600, check=False
    )
    assert result.returncode == 0, f"make image failed:\n{result.stderr[-5000:]}"
    return result.stdout.strip().splitlines()[-1]


def podman(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=300, check=False, input=input)


def run(
    image: str, *args: str, entrypoint: Sequence[str] = (), extra: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    flags = [*RESTRICTED, *extra]
    if entrypoint:
        flags += ["--entrypoint", json.dumps(list(entrypoint))]
    return podman("run", *flags, image, *args)


def test_the_image_is_configured_as_the_chart_expects(image: str) -> None:
    config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["flinkmem", "serve"]
    assert set(config["ExposedPorts"]) == {"9443/tcp", "8080/tcp"}
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["HOME"] == "/tmp" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/flinkmem/bin:")
    container = find(render({}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["runAsUser"] == 65532 and container["securityContext"]["readOnlyRootFilesystem"]
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp"}


def test_resolve_runs_as_the_chart_runs_the_image(image: str) -> None:
    result = run(image, "resolve", "-D", "jobmanager.memory.process.size=1600m", entrypoint=["flinkmem"])
    assert result.returncode == 0, result.stderr
    assert "Total Process Memory:   1.56 GiB (1677721600 bytes)" in result.stdout
    assert "-Xmx1073741824 -Xms1073741824" in result.stdout


def test_serve_starts_as_uid_65532_on_a_read_only_root(image: str, tmp_path: Path) -> None:
    """`flinkmem serve`, the image's entrypoint, starts its controller process and its health server
    and writes only under /tmp. No API server answers here (the kubeconfig names a closed port), so
    it never becomes ready, and keeps waiting instead of exiting."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {token: nothing}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    kubeconfig.chmod(0o644)
    name = "flinkmem-image-test-serve"
    podman("rm", "--force", "--ignore", name)
    flags = [f for f in RESTRICTED if f != "--rm"]  # its own loopback only (--network=none)
    flags += [f"--volume={kubeconfig}:/etc/flinkmem/kubeconfig:ro", "--env=KUBECONFIG=/etc/flinkmem/kubeconfig"]
    flags += ["--env=FLINKMEM_BIND_ADDRESS=127.0.0.1", "--env=FLINKMEM_SELF_SIGNED_DIR=/tmp/certs"]
    started = podman("run", "--detach", "--name", name, *flags, image)
    try:
        assert started.returncode == 0, started.stderr
        probe = (
            "import time, urllib.request, urllib.error\n"
            "for _ in range(120):\n"
            "    try:\n"
            "        urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=1); print('healthy'); break\n"
            "    except urllib.error.HTTPError as e: print('healthz', e.code); break\n"
            "    except OSError: time.sleep(0.5)\n"
        )
        answer = podman("exec", name, "python", "-c", probe)
        assert answer.stdout.strip() == "healthy", answer.stdout + answer.stderr + podman("logs", name).stdout
        ids = podman("exec", name, "sh", "-c", "id -u; id -g; ls /tmp/certs")
        assert ids.stdout.split()[:2] == ["65532", "65532"]
        assert "tls.crt" in ids.stdout, "it wrote its self-signed certificate under /tmp"
        assert podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true"
        # SIGTERM, as the kubelet stops it: flinkmem is PID 1, which ignores signals it has no handler
        # for; it stops by itself (exit 0), not by the SIGKILL after the grace period (137).
        assert podman("stop", "--time", "60", name).returncode == 0
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == "0", podman("logs", name).stdout[-3000:]
        assert "stopped" in podman("logs", name).stdout + podman("logs", name).stderr
    finally:
        podman("rm", "--force", "--time", "0", name)


def test_nothing_outside_tmp_is_writable(image: str) -> None:
    script = (
        "import os\n"
        "for path in ('/opt/flinkmem/x', '/x', '/etc/x', '/tmp/x'):\n"
        "    try:\n"
        "        open(path, 'w').close(); print(path, 'written')\n"
        "    except OSError as e: print(path, e.strerror)\n"
    )
    result = run(image, "-c", script, entrypoint=["python"])
    lines = dict(
        line.rsplit(" ", 1) if "written" in line else line.split(" ", 1) for line in result.stdout.splitlines()
    )
    assert lines == {
        "/opt/flinkmem/x": "Read-only file system",
        "/x": "Read-only file system",
        "/etc/x": "Read-only file system",
        "/tmp/x": "written",
    }, result.stdout + result.stderr


def test_the_runtime_stage_has_no_pip_and_only_what_flinkmem_runs(image: str) -> None:
    script = (
        "import importlib.util, json, os, sys\n"
        "site = next(p for p in sys.path if p.endswith('site-packages'))\n"
        "print(json.dumps({\n"
        "  'pip': importlib.util.find_spec('pip') is not None,\n"
        "  'setuptools': importlib.util.find_spec('setuptools') is not None,\n"
        "  'kubernetes': importlib.util.find_spec('kubernetes') is not None,\n"
        "  'bin': sorted(os.listdir('/opt/flinkmem/bin')),\n"
        "  'tests': [r for r, ds, fs in os.walk(site) if os.path.basename(r) in ('tests', 'test')],\n"
        "  'prefix': sys.prefix, 'version': sys.version_info[:2],\n"
        "}))\n"
    )
    result = run(image, "-c", script, entrypoint=["python"])
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["pip"] is False and found["setuptools"] is False
    assert found["kubernetes"] is False, "flinkmem loads its credentials itself: no Kubernetes client library"
    assert not any(name.startswith("pip") for name in found["bin"]) and "flinkmem" in found["bin"]
    assert found["tests"] == [], "the dependencies' test suites are left out"
    assert found["prefix"] == "/opt/flinkmem" and found["version"] == [3, 11]
