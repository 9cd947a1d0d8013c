"""The CPU of each part of a review, in one process, without network or TLS: kopf's admission engine
(`serve_admission_request`, which runs flinkmem's real handlers) against the plain decision functions
it wraps, the JSON around it, kopf's patch against a patch built straight from the pod plan, and a
memoised decision. The owner lookup is answered from memory here (its cost over the network is
measured by webhook.py and profile_reviews.py). Prints microseconds per review; asserts nothing.

What each part costs is what removing or replacing it can save.

    .venv/bin/python benchmarks/review_parts.py [--iterations N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import functools
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kopf
from kopf._cogs.structs import patches, references
from kopf._core.engines import admission as kopf_admission
from kopf._core.reactor import inventory

from benchmarks import objects
from flinkmem import serve as serve_module
from flinkmem.admission import memory_inputs, review_flinkdeployment
from flinkmem.cluster import Cluster
from flinkmem.handlers import admission_handlers
from flinkmem.metrics import Metrics
from flinkmem.podpatch import apply_plan, plan_pod
from flinkmem.settings import MUTATE_ID, VALIDATE_ID, Settings, ValidationMode
from flinkmem.validation import validate_deployment
from flinkmem.webserver import check_review

OWNER = objects.flinkdeployment("owner", "bench")


class _OwnerFromMemory(Cluster):
    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return copy.deepcopy(OWNER)  # what decoding the GET's answer yields: a fresh object each time


def _resources() -> references.Insights:
    insights = references.Insights()
    fd = references.Resource("flink.apache.org", "v1beta1", "flinkdeployments", kind="FlinkDeployment", namespaced=True)
    pod = references.Resource("", "v1", "pods", kind="Pod", namespaced=True)
    insights.webhook_resources.update({fd, pod})
    return insights


def kopf_engine() -> Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]]:
    """kopf's admission entry point bound as `kopf.operator` binds it, with flinkmem's handlers."""
    registry = kopf.OperatorRegistry()
    settings = Settings()
    admission_handlers(registry, _OwnerFromMemory(settings, Metrics(), None))  # type: ignore[arg-type]
    kopf_settings = kopf.OperatorSettings()
    insights = _resources()
    memories = inventory.ResourceMemories()

    memobase: Any = kopf.Memo()
    indices: Any = {}

    async def serve(review: dict[str, Any], webhook: str) -> dict[str, Any]:
        response = await kopf_admission.serve_admission_request(
            review,  # type: ignore[arg-type]
            webhook=webhook,  # type: ignore[arg-type]
            settings=kopf_settings,
            registry=registry,
            insights=insights,
            memories=memories,
            memobase=memobase,
            indices=indices,
        )
        return dict(response)

    return serve


def per_call_us(function: Callable[[], object], iterations: int) -> float:
    for _ in range(min(200, iterations)):
        function()
    started = time.process_time()
    for _ in range(iterations):
        function()
    return (time.process_time() - started) / iterations * 1e6


def _checked(raw: bytes) -> object:
    return check_review(json.loads(raw))


def _served(
    loop: asyncio.AbstractEventLoop,
    serve: Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]],
    raw: bytes,
    webhook: str,
) -> object:
    return loop.run_until_complete(serve(json.loads(raw), webhook))


def _idle_turn(loop: asyncio.AbstractEventLoop) -> object:
    return loop.run_until_complete(asyncio.sleep(0))


def direct_ops(plan: Any) -> list[dict[str, Any]]:
    """The JSON patch a mutating webhook could answer with, built from the plan without a diff."""
    base = f"/spec/containers/{plan.container_index}"
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": f"{base}/resources", "value": plan.resources},
        {"op": "add", "path": f"{base}/env", "value": plan.env},
    ]
    for key, value in plan.annotations.items():
        ops.append(
            {"op": "add", "path": "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1"), "value": value}
        )
    return ops


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    args = parser.parse_args()
    n = args.iterations
    serve = kopf_engine()
    loop = asyncio.new_event_loop()
    settings = Settings()
    reviews = {
        "FlinkDeployment, valid": (objects.review("u", objects.flinkdeployment("fd", "bench")), VALIDATE_ID),
        "FlinkDeployment, refused": (
            objects.review("u", objects.flinkdeployment("fd", "bench", refused=True)),
            VALIDATE_ID,
        ),
        "JobManager pod": (objects.review("u", objects.jobmanager_pod("jm", "owner", "bench")), MUTATE_ID),
        "TaskManager pod": (objects.review("u", objects.taskmanager_pod("tm", "owner", "bench")), MUTATE_ID),
    }
    print(f"# The parts of a review, µs of CPU per review, in one process ({n:,} iterations each)\n")
    print(
        "| review | json.loads | check_review | kopf serve_admission_request (incl. our handler) "
        "| our decision alone | kopf machinery (difference) | json.dumps of the answer |"
    )
    print("|---|---|---|---|---|---|---|")
    logging.getLogger("kopf").setLevel(logging.CRITICAL)  # the refusal line is measured apart below
    for name, (raw, webhook) in reviews.items():
        data = json.loads(raw)
        decode = per_call_us(functools.partial(json.loads, raw), n)
        checks = per_call_us(functools.partial(_checked, raw), n) - decode
        answer = loop.run_until_complete(serve(json.loads(raw), webhook))
        engine = per_call_us(functools.partial(_served, loop, serve, raw, webhook), n) - decode
        engine -= per_call_us(functools.partial(_idle_turn, loop), n)  # the loop's own turn
        obj = data["request"]["object"]
        if webhook == VALIDATE_ID:

            def decide(obj: dict[str, Any] = obj) -> object:
                return review_flinkdeployment("CREATE", obj, None, ValidationMode.ENFORCE, settings.container_name)

        elif obj["metadata"]["labels"]["component"] == "jobmanager":

            def decide(obj: dict[str, Any] = obj) -> object:
                validation = validate_deployment(copy.deepcopy(OWNER), settings.container_name)
                return plan_pod(obj, validation, settings.container_name)

        else:

            def decide(obj: dict[str, Any] = obj) -> object:
                return obj["metadata"]["labels"].get("component") == "jobmanager"

        ours = per_call_us(decide, n)
        encode = per_call_us(functools.partial(json.dumps, answer), n)
        print(
            f"| {name} | {decode:.0f} | {checks:.0f} | {engine:.0f} | {ours:.0f} | {engine - ours:.0f} | {encode:.0f} |"
        )

    print("\n## The JobManager pod's patch\n")
    pod = objects.jobmanager_pod("jm", "owner", "bench")
    plan = plan_pod(pod, validate_deployment(OWNER, settings.container_name), settings.container_name)
    assert plan is not None
    raw_pod: Any = pod

    def kopf_patch() -> object:
        patch = patches.Patch(body=kopf.Body(raw_pod))
        patch.fns.append(lambda raw: apply_plan(raw, plan))  # type: ignore[arg-type]
        return patch.as_json_patch()

    def kopf_empty_patch() -> object:
        return patches.Patch(body=kopf.Body(raw_pod)).as_json_patch()

    def direct() -> object:
        return base64.b64encode(json.dumps(direct_ops(plan)).encode())

    print("| way | µs per pod |\n|---|---|")
    print(f"| kopf: deep copy, apply, JSON-patch diff (as today) | {per_call_us(kopf_patch, n):.0f} |")
    print(f"| kopf: an empty patch (every validating review pays it too) | {per_call_us(kopf_empty_patch, n):.0f} |")
    print(f"| ops built straight from the plan, encoded | {per_call_us(direct, n):.0f} |")

    print("\n## Memoised decisions (a flood of identical manifests, or many pods of one FlinkDeployment)\n")
    refused = objects.flinkdeployment("fd", "bench", refused=True)
    memo: dict[str, object] = {}

    def memoised() -> object:
        key = memory_inputs(refused)
        if key not in memo:
            memo[key] = review_flinkdeployment("CREATE", refused, None, ValidationMode.ENFORCE, "flink-main-container")
        return memo[key]

    def fresh() -> object:
        return review_flinkdeployment("CREATE", refused, None, ValidationMode.ENFORCE, "flink-main-container")

    owner_validations: dict[tuple[str, str], object] = {}

    def owner_memoised() -> object:
        key = ("uid", "resourceVersion")
        if key not in owner_validations:
            owner_validations[key] = validate_deployment(OWNER, "flink-main-container")
        return plan_pod(pod, owner_validations[key], "flink-main-container")  # type: ignore[arg-type]

    def owner_fresh() -> object:
        return plan_pod(pod, validate_deployment(OWNER, "flink-main-container"), "flink-main-container")

    print("| decision | fresh, µs | memoised, µs |\n|---|---|---|")
    rows = [
        ("refused FlinkDeployment (key: memory_inputs)", fresh, memoised),
        ("JobManager pod plan (owner's validation keyed by uid and resourceVersion)", owner_fresh, owner_memoised),
    ]
    for title, without, with_memo in rows:
        print(f"| {title} | {per_call_us(without, n):.0f} | {per_call_us(with_memo, n):.0f} |")
    print("\n## Logging a refusal (kopf's line per failed handler, as `flinkmem serve` configures logging)\n")
    raw, webhook = reviews["FlinkDeployment, refused"]
    served = functools.partial(_served, loop, serve, raw, webhook)
    quiet: list[float] = []
    logged: list[float] = []
    kopf_logger = logging.getLogger("kopf.objects")  # _configure_logging sets this one's level
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        serve_module._configure_logging(verbose=False)
        # Alternated, five times each, so that the machine's noise falls on both alike.
        for _ in range(5):
            kopf_logger.setLevel(logging.CRITICAL)
            quiet.append(per_call_us(served, n // 5))
            kopf_logger.setLevel(logging.NOTSET)
            logged.append(per_call_us(served, n // 5))
        logging.getLogger().handlers.clear()
    print("| refused FlinkDeployment through kopf | µs (median of 5) |\n|---|---|")
    print(f"| without the log line | {statistics.median(quiet):.0f} |")
    print(f"| with it (formatted, written to /dev/null) | {statistics.median(logged):.0f} |")
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
