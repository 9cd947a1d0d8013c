"""The benchmarks' helpers that decide what is measured: which webhook a pod goes to, and whose CPU
and memory are counted."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks import objects, procstat
from benchmarks.labelselect import matches, selecting_webhook_path
from flinkmem.runtime.webhookconfig import mutating_configuration


def test_label_selector_operators_follow_kubernetes() -> None:
    labels = {"component": "jobmanager", "type": "flink-native-kubernetes"}
    assert matches(None, labels)
    assert matches({}, labels)
    assert matches({"matchLabels": {"component": "jobmanager"}}, labels)
    assert not matches({"matchLabels": {"component": "taskmanager"}}, labels)
    assert matches({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["x"]}]}, labels)
    assert not matches({"matchExpressions": [{"key": "type", "operator": "NotIn", "values": [labels["type"]]}]}, labels)
    assert matches({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, labels)
    assert not matches({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, labels)
    assert not matches({"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]}, labels)


def test_pods_go_to_the_webhook_flinkmem_registers_for_them() -> None:
    config = mutating_configuration("https://127.0.0.1:9443", "")
    jobmanager = objects.jobmanager_pod("jm", "fd", "ns")["metadata"]["labels"]
    assert selecting_webhook_path(config, jobmanager) == "/mutate-flink-pod"
    opted_in = {"component": "taskmanager", "flinkmem.io/opt-in": "true"}
    assert selecting_webhook_path(config, opted_in) == "/mutate-flink-pod"
    assert selecting_webhook_path(config, objects.unrelated_pod("web", "ns")["metadata"]["labels"]) is None


def test_process_tree_counts_children_cpu_apart_from_the_caller() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nwhile time.process_time() < 0.3: pass\nsys.stdin.read()"],
        stdin=subprocess.PIPE,
    )
    try:
        tree = procstat.process_tree(os.getpid())
        assert child.pid in tree and os.getpid() in tree
        # The child burns 0.3 s of CPU, then waits for its stdin; /proc counts in clock ticks.
        deadline = time.monotonic() + 120
        while procstat.cpu_seconds({child.pid}) < 0.25 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert procstat.cpu_seconds({child.pid}) >= 0.25
        assert procstat.cpu_seconds({os.getpid()}) < procstat.cpu_seconds({os.getpid(), child.pid})
        assert procstat.memory({child.pid}).rss > 0
        assert procstat.process_tree(child.pid) == {child.pid}
    finally:
        child.kill()
        child.wait()
