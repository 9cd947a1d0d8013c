"""Credentials masked and long runs cut in everything flinkmem writes, in time linear in the text."""

from __future__ import annotations

import json
import random
import re

import pytest

from flinkmem.decisions import redaction
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


def test_the_credential_prefilter_sees_every_case_variant_the_pattern_matches() -> None:
    # The prefilter skips the per-word scan when no credential word appears in the case-folded text; it
    # must never miss a word that the case-insensitive pattern would find, whatever the characters.
    letters = sorted(set("".join(redaction._WORDS)))
    any_letter = re.compile(f"[{''.join(letters)}]", re.IGNORECASE)
    strays = [
        hex(code)
        for code in range(0x110000)
        if not 0xD800 <= code <= 0xDFFF
        and any_letter.fullmatch(chr(code))
        and redaction._folded(chr(code)) not in letters
    ]
    assert strays == []
    assert redact("credentİal=x paſſword=y ıd-KEY: z") == f"credentİal={MASK} paſſword={MASK} ıd-KEY: {MASK}"


def _reference(text: str) -> str:
    """The plain two-scan form: every word tried, a long run looked for at every position."""
    masked = re.sub(
        rf"\S{{{redaction.LONG_RUN + 1},}}", redaction._cut, redaction._ASSIGNMENT.sub(redaction._mask, text)
    )
    if len(masked) > MESSAGE_LIMIT:
        masked = f"{masked[: MESSAGE_LIMIT - 40]}…({len(masked)} characters in all)"
    return masked


def test_the_quick_paths_give_what_the_plain_scans_give() -> None:
    rng = random.Random(8)
    pieces = [
        "key",
        "KEY",
        "Token",
        "paſſword",
        "credentİal",
        "sEcret",
        "passwd",
        "=",
        ": ",
        " ",
        ",",
        ";",
        "'",
        '"',
        "a",
        "Z9",
        ".",
        "-",
        "_",
        "\t",
        "\n",
        "K",
        "ı",
        "x" * 250,
        "é",
    ]
    for _ in range(4000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 40)))
        assert redact(text) == _reference(text), text
