"""Whole admission reviews a hostile tenant can make, through the admission service as `flinkmem serve`
runs it: each is answered correctly, within the hang deadline, and in memory bounded by its size.

The bodies are as large as the API server lets through (a dry-run create of up to 3 MiB). Memory is
measured with `tracemalloc` (allocations, which do not depend on the machine's speed): decoding JSON
into Python objects takes up to about 10 times the body, and nothing a review does may add much more.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from flinkmem.conventions import MUTATE_ID, VALIDATE_ID
from tests.support.budget import cpu_deadline
from tests.unit.admission_harness import FD, PODS, Harness, Lookup, review
from tests.unit.fixtures import flinkdeployment, jobmanager_pod

MIB = 1 << 20
# The largest body the API server accepts for a write (its max request size).
API_SERVER_MAX = 3 * MIB
# Peak allocations of one review, as a multiple of its body: JSON decoding of dense maps alone takes
# about 10 times the body; what the review does besides must stay small next to it.
MEMORY_PER_BODY_BYTE = 12


def _pod(**main: Any) -> dict[str, Any]:
    pod = jobmanager_pod(extra_containers=0)
    pod["spec"]["containers"][0].update(main)
    return pod


def _nested(depth: int) -> dict[str, Any]:
    top: dict[str, Any] = {"jobmanager.memory.process.size": "2g"}
    node = top
    for _ in range(depth):
        child: dict[str, Any] = {}
        node["k"] = child
        node = child
    return top


# (webhook, resource, object, check of the response payload)
Case = tuple[str, dict[str, str], dict[str, Any], Callable[[dict[str, Any]], None]]


def _allowed(payload: dict[str, Any]) -> None:
    assert payload["allowed"] is True and "patch" not in payload, payload.get("warnings")


def _patched(payload: dict[str, Any]) -> None:
    assert payload["allowed"] is True and payload["patch"]


def _refused_naming(field: str) -> Callable[[dict[str, Any]], None]:
    def check(payload: dict[str, Any]) -> None:
        assert payload["allowed"] is False
        assert field in payload["status"]["message"], payload["status"]["message"][:500]

    return check


def _unchanged_naming(field: str) -> Callable[[dict[str, Any]], None]:
    def check(payload: dict[str, Any]) -> None:
        assert payload["allowed"] is True and "patch" not in payload
        assert any(field in warning for warning in payload["warnings"]), payload["warnings"]

    return check


CASES: dict[str, Case] = {
    "100,000 other keys": (
        VALIDATE_ID,
        FD,
        flinkdeployment({f"pipeline.k{i}": "v" * 8 for i in range(100_000)}),
        _allowed,
    ),
    "3 MiB of Java options ending in -Xmx": (
        VALIDATE_ID,
        FD,
        flinkdeployment({"env.java.opts.jobmanager": "-Dx=y " * (API_SERVER_MAX // 6 - 4) + "-Xmx8g"}),
        _refused_naming("env.java.opts.jobmanager sets -Xmx8g"),
    ),
    "3 MiB of quoted Java options": (
        VALIDATE_ID,
        FD,
        flinkdeployment({"env.java.opts.jobmanager": "'-Dx=a b' " * (API_SERVER_MAX // 10 - 2)}),
        _allowed,
    ),
    "20,000 digits in the heap": (
        VALIDATE_ID,
        FD,
        flinkdeployment({"jobmanager.memory.heap.size": "9" * 20_000}),
        _refused_naming("jobmanager.memory.heap.size has the value"),
    ),
    "configuration nested 900 deep": (
        VALIDATE_ID,
        FD,
        flinkdeployment(_nested(900)),
        _refused_naming("spec.flinkConfiguration.k.k"),
    ),
    "a pod with 50,000 environment variables": (
        MUTATE_ID,
        PODS,
        _pod(env=[{"name": f"E{i}", "value": "v" * 20} for i in range(50_000)]),
        _patched,
    ),
    "a pod whose Java options Linux cannot exec": (
        MUTATE_ID,
        PODS,
        _pod(env=[{"name": "FLINK_ENV_JAVA_OPTS_JM", "value": "-Xmx1g " * (2 * MIB // 7)}]),
        _unchanged_naming("MAX_ARG_STRLEN"),
    ),
    "a pod with 2 MB of bash -c": (
        MUTATE_ID,
        PODS,
        _pod(args=["bash", "-c", "jobmanager.sh -Dx=" + "y" * (2 * MIB)]),
        _unchanged_naming("spec.containers[0].args[2]"),
    ),
    "a pod with 20,000 containers": (
        MUTATE_ID,
        PODS,
        {**_pod(), "spec": {"containers": [{"name": f"c{i}", "image": "x"} for i in range(20_000)]}},
        _unchanged_naming("no container named flink-main-container"),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_reviews_are_answered_in_bounded_time_and_memory(name: str) -> None:
    webhook, resource, obj, check = CASES[name]
    body = review(resource, obj)
    assert len(body) <= API_SERVER_MAX + 64 * 1024
    harness = Harness(Lookup(flinkdeployment(memory="2g")))
    tracemalloc.start()
    try:
        with cpu_deadline(name):
            status, answer, _ = harness.post(webhook, body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 200
    check(answer["response"])
    assert peak < MEMORY_PER_BODY_BYTE * len(body) + MIB, f"{peak / MIB:.1f} MiB for {len(body) / MIB:.2f} MiB"
    json.dumps(answer)  # the answer itself is plain JSON
