"""`make demo`: flinkmem on a local control plane, told through the manifests in examples/.

Starts `flinkmem serve` against the running control plane (`make demo` brings it up first), applies
every FlinkDeployment in examples/ and says what was accepted, refused and warned. For each accepted
one it then creates the JobManager Deployment Flink's native integration would create and shows the
memory and JVM flags its pod came out with. With KEEP=1 everything is left running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localplane.controlplane import kubectl_binary  # noqa: E402
from localplane.serve import running_flinkmem  # noqa: E402

KUBECONFIG = Path(os.environ.get("KUBECONFIG") or ROOT / ".cluster" / "kubeconfig")
NAMESPACE = "flink-demo"
KEEP = os.environ.get("KEEP") == "1"


def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(KUBECONFIG), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def jobmanager_deployment(name: str) -> dict[str, Any]:
    """What Flink's native Kubernetes integration creates for a FlinkDeployment's JobManager (abridged)."""
    labels = {"app": name, "component": "jobmanager", "type": "flink-native-kubernetes"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "flink-main-container",
                            "image": "flink:2.1",
                            "args": ["bash", "-c", "kubernetes-jobmanager.sh kubernetes-session"],
                            "resources": {"requests": {"cpu": "1"}},
                        },
                        {"name": "log-shipper", "image": "busybox", "resources": {"limits": {"memory": "64Mi"}}},
                    ]
                },
            },
        },
    }


def taskmanager_pod(name: str) -> dict[str, Any]:
    """A TaskManager pod labelled as Flink's resource manager labels them (its -D options left out)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-taskmanager-1-1",
            "namespace": NAMESPACE,
            "labels": {"app": name, "component": "taskmanager", "type": "flink-native-kubernetes"},
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "flink-main-container",
                    "image": "flink:2.1",
                    "args": ["bash", "-c", "kubernetes-taskmanager.sh"],
                    "resources": {"requests": {"cpu": "1"}},
                }
            ],
        },
    }


def show_pod(name: str, component: str) -> None:
    selector = f"app={name},component={component}"
    for _ in range(60):
        pods = json.loads(kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "json").stdout)["items"]
        if pods:
            break
        time.sleep(0.5)
    else:
        print(f"    (no {component} pod appeared)")
        return
    pod = pods[0]
    print(f"    {component} pod {pod['metadata']['name']}:")
    flags = (pod["metadata"].get("annotations") or {}).get("flinkmem.io/jvm-flags")
    if flags:
        print(f"      JVM flags (Flink's own, as flinkmem derived them): {flags}")
    for container in pod["spec"]["containers"]:
        resources = container.get("resources", {})
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        requests, limits = resources.get("requests"), resources.get("limits")
        print(f"      container {container['name']}: requests {requests}, limits {limits}")
        for variable in ("FLINK_ENV_JAVA_OPTS_JM", "FLINK_ENV_JAVA_OPTS_TM"):
            if variable in env:
                print(f"        {variable}={env[variable]} (overrides a memory flag in the Java options)")


def controller_view(name: str) -> None:
    for _ in range(40):
        obj = json.loads(kubectl("get", "flinkdeployment", name, "-n", NAMESPACE, "-o", "json").stdout or "{}")
        annotation = obj.get("metadata", {}).get("annotations", {}).get("flinkmem.io/resolved-memory")
        if annotation:
            data = json.loads(annotation)
            print(f"    controller annotation flinkmem.io/resolved-memory: valid={data['valid']}")
            for role in ("jobmanager", "taskmanager"):
                memory = (data.get(role) or {}).get("memory") or {}
                if memory:
                    print(
                        f"      {role}: totalProcessMemory={memory.get('totalProcessMemory')}, "
                        f"jvmArgs={memory.get('jvmArgs')!r}"
                    )
            return
        time.sleep(0.5)
    print("    (controller annotation not written yet)")


def main() -> int:
    print(f"flinkmem demo on the cluster of {KUBECONFIG}")
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    workdir = ROOT / ".cluster" / "demo"
    with running_flinkmem(KUBECONFIG, workdir, ["--validation-mode", "enforce"], unregister=not KEEP, keep=KEEP) as op:
        print(f"flinkmem is serving webhooks at {op.webhook_url} (logs: {op.log_path})\n")
        kubectl("create", "namespace", NAMESPACE)
        accepted: list[str] = []
        for path in examples:
            doc = yaml.safe_load(path.read_text())
            name = doc["metadata"]["name"]
            result = kubectl("apply", "-n", NAMESPACE, "-f", str(path))
            verdict = "ACCEPTED" if result.returncode == 0 else "REFUSED "
            mark = "✔" if result.returncode == 0 else "✘"
            print(f"{mark} {verdict} {path.name} ({name})")
            for line in result.stderr.splitlines():
                if line.startswith("Warning:"):
                    print(f"    kubectl {line}")
                elif "denied the request" in line:
                    print(f"    reason: {line.split('denied the request: ', 1)[-1]}")
            if result.returncode == 0:
                accepted.append(name)
        print("\nJobManager and TaskManager pods, labelled the way Flink's native integration labels them:")
        for name in accepted:
            kubectl("apply", "-f", "-", stdin=json.dumps(jobmanager_deployment(name)))
            kubectl("apply", "-f", "-", stdin=json.dumps(taskmanager_pod(name)))
        for name in accepted:
            print(f"  {name}:")
            show_pod(name, "jobmanager")
            show_pod(name, "taskmanager")
            controller_view(name)
        events = kubectl("get", "events", "-n", NAMESPACE, "--field-selector", "reason=MemoryResolved", "-o", "name")
        print(f"\nEvents MemoryResolved posted by the controller: {len(events.stdout.split())}")
        if KEEP:
            print(
                f"\nKEEP=1: flinkmem (pid {op.process.pid}) and the cluster keep running; "
                f"stop them with: kill {op.process.pid}; make cluster-down"
            )
        else:
            kubectl("delete", "namespace", NAMESPACE, "--wait=false")
    return 0


if __name__ == "__main__":
    sys.exit(main())
