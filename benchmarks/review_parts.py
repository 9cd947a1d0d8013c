"""The CPU of each part of a review, in one process, without network or TLS: kopf's admission engine
(`serve_admission_request`, running flinkmem's kopf handlers) against the direct answer flinkmem gives
by default (`runtime.admission.direct`), both over the same admission service; the JSON around them; kopf's
pod patch (deep copy and diff) against the one built from the plan; and the refusal log line. The
sources of pods are answered from memory here (over the network: webhook.py, profile_reviews.py).
Prints microseconds per review; asserts nothing.

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
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kopf
from kopf._cogs.structs import patches

from benchmarks import objects
from flinkmem.conventions import MUTATE_ID, VALIDATE_ID
from flinkmem.decisions.podplan import apply_plan, plan_pod
from flinkmem.decisions.validation import validate_deployment
from flinkmem.runtime import serve as serve_module
from flinkmem.runtime.admission.direct import DirectTransport
from flinkmem.runtime.admission.kopfpath import InProcessKopf, KopfTransport, register_admission
from flinkmem.runtime.admission.service import AdmissionService
from flinkmem.runtime.cluster import Cluster
from flinkmem.runtime.events import EventPoster
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.refusals import RefusalLog
from flinkmem.runtime.settings import Settings
from flinkmem.runtime.webserver import Transport, handle_review
from flinkmem.sources.cache import SourceCache

OWNER = objects.flinkdeployment("owner", "bench")
Serve = Callable[[bytes, str], Awaitable[object]]


class _OwnerFromMemory(Cluster):
    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return copy.deepcopy(OWNER)  # what decoding the GET's answer yields: a fresh object each time

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return None


def engines(cached: bool) -> tuple[Serve, Serve]:
    """One POST's work (`webserver.handle_review`) through kopf's engine and through the direct answer, over
    one admission service; with `cached`, the owner comes from the watch-fed cache (as in `flinkmem serve`),
    else from a 'GET'."""
    settings = Settings()
    cluster = _OwnerFromMemory(settings, Metrics(), None)  # type: ignore[arg-type]
    cache = SourceCache(cluster)
    if cached:
        cache.remember_deployment(OWNER)
    service = AdmissionService(
        settings, cache, Metrics(), EventPoster(cluster), RefusalLog(logging.getLogger("bench.refusals"))
    )
    registry = kopf.OperatorRegistry()
    register_admission(registry, service, settings.resource)

    def bound(transport: Transport) -> Serve:
        async def serve(raw: bytes, webhook: str) -> object:
            return await handle_review(service, transport, webhook, raw)

        return serve

    return bound(KopfTransport(InProcessKopf(registry, settings.resource))), bound(DirectTransport(service))


def per_call_us(function: Callable[[], object], iterations: int) -> float:
    for _ in range(min(200, iterations)):
        function()
    started = time.process_time()
    for _ in range(iterations):
        function()
    return (time.process_time() - started) / iterations * 1e6


def _served(loop: asyncio.AbstractEventLoop, serve: Serve, raw: bytes, webhook: str) -> object:
    return loop.run_until_complete(serve(raw, webhook))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    args = parser.parse_args()
    n = args.iterations
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
    idle = per_call_us(lambda: loop.run_until_complete(asyncio.sleep(0)), n)
    print(f"# The parts of a review, µs of CPU per review, in one process ({n:,} iterations each)\n")
    print("| review | json.loads | kopf's engine (owner GET / cache) | direct answer (owner GET / cache) | ratio |")
    print("|---|---|---|---|---|")
    logging.getLogger("kopf").setLevel(logging.CRITICAL)  # the refusal line is measured apart below
    logging.getLogger("bench.refusals").setLevel(logging.CRITICAL)
    for name, (raw, webhook) in reviews.items():
        decode = per_call_us(functools.partial(json.loads, raw), n)
        figures: dict[tuple[str, bool], float] = {}
        for cached in (False, True):
            through_kopf, direct = engines(cached)
            for label, serve in (("kopf", through_kopf), ("direct", direct)):
                spent = per_call_us(functools.partial(_served, loop, serve, raw, webhook), n)
                figures[(label, cached)] = spent - decode - idle
        print(
            f"| {name} | {decode:.0f} | {figures[('kopf', False)]:.0f} / {figures[('kopf', True)]:.0f} "
            f"| {figures[('direct', False)]:.0f} / {figures[('direct', True)]:.0f} "
            f"| {figures[('kopf', True)] / max(figures[('direct', True)], 0.1):.1f}× |"
        )

    print("\n## The JobManager pod's patch\n")
    pod = objects.jobmanager_pod("jm", "owner", "bench")
    validation = validate_deployment(OWNER, settings.container_name)
    assert validation.source is not None and validation.jobmanager is not None
    plan = plan_pod(pod, len(pod["spec"]["containers"]) - 1, validation.jobmanager, validation.source)
    assert plan is not None
    raw_pod: Any = pod

    def kopf_patch() -> object:
        patch = patches.Patch(body=kopf.Body(raw_pod))
        patch.fns.append(lambda raw: apply_plan(cast(dict[str, Any], raw), plan))
        return patch.as_json_patch()

    def kopf_empty_patch() -> object:
        return patches.Patch(body=kopf.Body(raw_pod)).as_json_patch()

    def from_plan() -> object:
        return base64.b64encode(json.dumps(plan.json_patch(pod)).encode())

    print("| way | µs per pod |\n|---|---|")
    print(f"| kopf: deep copy, apply, JSON-patch diff | {per_call_us(kopf_patch, n):.0f} |")
    empty = per_call_us(kopf_empty_patch, n)
    print(f"| kopf: an empty patch (every validating review through kopf pays it) | {empty:.0f} |")
    print(f"| built from the plan, encoded (the direct answer) | {per_call_us(from_plan, n):.0f} |")

    print("\n## Logging a refusal (a flood of one refused manifest)\n")
    raw, webhook = reviews["FlinkDeployment, refused"]
    kopf_logger = logging.getLogger("kopf.objects")  # _configure_logging sets this one's level
    refusal_logger = logging.getLogger("bench.refusals")
    rows: dict[str, list[float]] = {"kopf, quiet": [], "kopf, logged": [], "direct, quiet": [], "direct, logged": []}
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        serve_module._configure_logging(verbose=False)
        through_kopf, direct = engines(True)
        # Alternated, five times each, so that the machine's noise falls on all alike.
        for _ in range(5):
            for label, serve, logger in (("kopf", through_kopf, kopf_logger), ("direct", direct, refusal_logger)):
                logger.setLevel(logging.CRITICAL)
                rows[f"{label}, quiet"].append(
                    per_call_us(functools.partial(_served, loop, serve, raw, webhook), n // 5)
                )
                logger.setLevel(logging.NOTSET)
                rows[f"{label}, logged"].append(
                    per_call_us(functools.partial(_served, loop, serve, raw, webhook), n // 5)
                )
        logging.getLogger().handlers.clear()
    print("| refused FlinkDeployment | µs (median of 5) |\n|---|---|")
    for label, values in rows.items():
        print(f"| {label} | {statistics.median(values):.0f} |")
    print(
        "\nBoth paths log the first refusal of each (namespace, name, rule) and count the repeats "
        "(runtime.refusals.RefusalLog); kopf's engine also logs every refusal itself."
    )
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
