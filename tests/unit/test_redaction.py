"""Credentials masked and long runs cut in everything flinkmem writes, in time linear in the text."""

from __future__ import annotations

import json

import pytest

from flinkmem.decisions.annotations import ANNOTATION_LIMIT, memory_annotation
from flinkmem.decisions.redaction import MASK, MESSAGE_LIMIT, redact
from flinkmem.decisions.validation import validate_deployment
from tests.support.budget import cpu_deadline
from tests.unit.fixtures import flinkdeployment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "-Djavax.net.ssl.keyStorePassword=hunter2 -XX:+UseG1GC",
            f"-Djavax.net.ssl.keyStorePassword={MASK} -XX:+UseG1GC",
        ),
        ("s3.secret-key: abc123, other: x", f"s3.secret-key: {MASK}, other: x"),
        ('{"token": "t0k3n"}', f'{{"token": "{MASK}"}}'),
        ("PASSWORD = 'a b c'", f"PASSWORD = '{MASK}'"),
        ("security.ssl.internal.key-password=x;y", f"security.ssl.internal.key-password={MASK};y"),
        ("jobmanager.memory.process.size=1600m", "jobmanager.memory.process.size=1600m"),
        ("taskmanager.memory.managed.size: 1 GiB", "taskmanager.memory.managed.size: 1 GiB"),
        ("no assignment here", "no assignment here"),
    ],
)
def test_credential_values_are_masked_and_the_rest_is_kept(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_long_runs_are_cut_and_say_how_long_they_were() -> None:
    digits = "1" * 20_000
    out = redact(f"kubernetes.jobmanager.memory.limit-factor has the value '{digits}x', which Flink cannot read")
    assert digits not in out and "…(20004 characters)" in out and out.endswith("which Flink cannot read")
    assert len(redact("word " * 10_000)) <= MESSAGE_LIMIT


@pytest.mark.parametrize("size", [3 * 1024 * 1024])
@pytest.mark.parametrize("unit", ["a", "a=", "a ", "-", "key=", "x" * 300 + " "])
def test_redaction_is_linear_on_hostile_text(size: int, unit: str) -> None:
    text = unit * (size // len(unit))
    # A quadratic scan of 3 MiB would take hours.
    with cpu_deadline(f"redacting {len(text):,} characters"):
        redact(text)


def test_the_annotation_masks_credentials_and_is_capped() -> None:
    opts = "-Xmx4g -Dapp.db.password=s3cr3t"
    validation = validate_deployment(flinkdeployment({"env.java.opts.jobmanager": opts}, memory="2g"))
    annotation = memory_annotation(validation)
    assert "s3cr3t" not in annotation and json.loads(annotation)["valid"] is False
    many = {f"taskmanager.heap.mb{i}": "1" for i in range(10)}
    huge = validate_deployment(flinkdeployment({**many, "kubernetes.jobmanager.annotations": "a" * 100}, memory="2g"))
    assert len(memory_annotation(huge).encode()) <= ANNOTATION_LIMIT
