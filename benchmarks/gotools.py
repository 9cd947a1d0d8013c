"""The benchmarks' Go programs (benchmarks/noop, benchmarks/loadgen): built with `go build` into the
cache the first time they are needed, and the load generator's runs.

Only their source is in the repository; the binaries live in $FLINKMEM_CACHE/bench.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

__all__ = ["LoadResult", "build", "run_load"]

HERE = Path(__file__).resolve().parent


def _cache() -> Path:
    return Path(os.environ.get("FLINKMEM_CACHE", Path.home() / ".cache" / "flinkmem")) / "bench"


def build(program: str) -> Path:
    """The binary of benchmarks/<program>, rebuilt when its source is newer (go build is quick when not)."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise SystemExit("the benchmarks need Go (https://go.dev/dl/) to build their no-op webhook and load generator")
    source = HERE / program
    target = _cache() / program
    target.parent.mkdir(parents=True, exist_ok=True)
    # Another session may build the same program at the same time: each writes its own file, then renames.
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / program
        env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
        subprocess.run([go, "build", "-trimpath", "-o", str(built), "."], cwd=source, env=env, check=True)
        os.replace(built, target)
    return target


class LoadResult(NamedTuple):
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_seconds: float  # the load generator's own CPU during the measured requests

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def run_load(
    binary: Path,
    url: str,
    body: bytes,
    *,
    concurrency: int,
    count: int,
    warmup: int = 0,
    start: int = 0,
    rate: float = 0.0,
    expect: int = 200,
    contains: str = "",
    allowed: bool | None = None,
    patched: bool = False,
    ca: Path | None = None,
    client_cert: tuple[Path, Path] | None = None,
    command_prefix: Sequence[str] = (),
) -> LoadResult:
    """One run of the load generator; a request that fails its check fails the benchmark.

    `allowed` and `patched` check each answer as an AdmissionReview; `contains` as text.
    """
    with tempfile.NamedTemporaryFile(prefix="flinkmem-load-", suffix=".json") as template:
        template.write(body)
        template.flush()
        command = [
            *command_prefix,
            str(binary),
            f"-url={url}",
            f"-body={template.name}",
            f"-concurrency={concurrency}",
            f"-count={count}",
            f"-warmup={warmup}",
            f"-start={start}",
            f"-rate={rate}",
            f"-expect={expect}",
            f"-contains={contains}",
            f"-allowed={'' if allowed is None else str(allowed).lower()}",
            f"-patched={str(patched).lower()}",
        ]
        if ca is not None:
            command.append(f"-ca={ca}")
        if client_cert is not None:
            command += [f"-cert={client_cert[0]}", f"-key={client_cert[1]}"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"load on {url} failed ({done.returncode}): {done.stdout.strip()} {done.stderr.strip()}")
    figures = json.loads(done.stdout)
    return LoadResult(
        figures["requests"],
        figures["seconds"],
        figures["p50_ms"],
        figures["p90_ms"],
        figures["p99_ms"],
        figures["max_ms"],
        figures["cpu_seconds"],
    )
