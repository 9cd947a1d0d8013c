"""JVM memory flags in user Java options and the order Flink's scripts hand them to the JobManager JVM
(memory-model notes, section 10): `FLINK_ENV_JAVA_OPTS` or the `env.java.*.all` keys first, then
`FLINK_ENV_JAVA_OPTS_JM` or the `env.java.*.jobmanager` keys, all after Flink's own flags."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings

from flinkmem.decisions.javaopts import JvmMemoryFlag, java_opts_sources, memory_flags, role_opts, with_memory_flags
from flinkmem.engine import FlinkVersion, resolve_jobmanager
from flinkmem.sources.roles import JOBMANAGER
from tests.support.budget import cpu_deadline
from tests.support.shellref import SHELL_TEXT, shlex_or_split

KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        (
            "-Xmx2g -Xms1024m -XX:MaxMetaspaceSize=256m -XX:MaxDirectMemorySize=134217728 -XX:+UseG1GC",
            [
                JvmMemoryFlag("-Xmx2g", "heap-max", 2 * GIB),
                JvmMemoryFlag("-Xms1024m", "heap-initial", GIB),
                JvmMemoryFlag("-XX:MaxMetaspaceSize=256m", "metaspace", 256 * MIB),
                JvmMemoryFlag("-XX:MaxDirectMemorySize=134217728", "direct", 134217728),
            ],
        ),
        ("-XX:MaxHeapSize=1G", [JvmMemoryFlag("-XX:MaxHeapSize=1G", "heap-max", GIB)]),
        ("-XX:InitialHeapSize=512M", [JvmMemoryFlag("-XX:InitialHeapSize=512M", "heap-initial", 512 * MIB)]),
        ("-Xmx1k -Xmx1K", [JvmMemoryFlag("-Xmx1k", "heap-max", KIB), JvmMemoryFlag("-Xmx1K", "heap-max", KIB)]),
        ("-Xmx1t", [JvmMemoryFlag("-Xmx1t", "heap-max", TIB)]),
        ("-Xmx512", [JvmMemoryFlag("-Xmx512", "heap-max", 512)]),  # bytes without a unit
        ("-Xss1m -XX:MaxRAM=1g -Xmxfoo -Xmx -Dxmx=-Xmx1g -XX:+UseG1GC", []),
        ("", []),
        ('"-Dname=a b" -Xmx1g', [JvmMemoryFlag("-Xmx1g", "heap-max", GIB)]),
        ('-Dx="unbalanced -Xmx3g', [JvmMemoryFlag("-Xmx3g", "heap-max", 3 * GIB)]),
    ],
)
def test_memory_flags(opts: str, expected: list[JvmMemoryFlag]) -> None:
    assert memory_flags(opts) == expected


def test_sources_from_configuration_in_script_order() -> None:
    config = {
        "env.java.default-opts.all": "-Dd=all",
        "env.java.opts.all": '"-Xmx2g"',
        "env.java.opts": "-Dignored=1",  # only a fallback when env.java.opts.all is empty
        "env.java.default-opts.jobmanager": "-Dd=jm",
        "env.java.opts.jobmanager": "-Xmx3g",
    }
    assert java_opts_sources(config, {}, JOBMANAGER) == [
        ("env.java.default-opts.all", "-Dd=all"),
        ("env.java.opts.all", "-Xmx2g"),  # one leading and one trailing double quote stripped
        ("env.java.default-opts.jobmanager", "-Dd=jm"),
        ("env.java.opts.jobmanager", "-Xmx3g"),
    ]


def test_env_java_opts_is_the_fallback_for_opts_all() -> None:
    assert java_opts_sources({"env.java.opts": "-Xmx1g"}, {}, JOBMANAGER) == [("env.java.opts", "-Xmx1g")]
    assert java_opts_sources({"env.java.opts": "-Xmx1g", "env.java.opts.all": ""}, {}, JOBMANAGER) == [
        ("env.java.opts", "-Xmx1g")
    ]


def test_environment_variables_replace_the_configuration() -> None:
    config = {"env.java.opts.all": "-Xmx2g", "env.java.opts.jobmanager": "-Xmx3g"}
    env = {"FLINK_ENV_JAVA_OPTS": '"-Xmx4g"', "FLINK_ENV_JAVA_OPTS_JM": "-Xmx5g"}
    # An already set variable is used verbatim: the config keys are not read, no quotes stripped.
    assert java_opts_sources(config, env, JOBMANAGER) == [
        ("env FLINK_ENV_JAVA_OPTS", '"-Xmx4g"'),
        ("env FLINK_ENV_JAVA_OPTS_JM", "-Xmx5g"),
    ]


def test_empty_environment_variables_do_not_count() -> None:
    config = {"env.java.opts.jobmanager": "-Xmx3g"}
    assert java_opts_sources(config, {"FLINK_ENV_JAVA_OPTS": "", "FLINK_ENV_JAVA_OPTS_JM": ""}, JOBMANAGER) == [
        ("env.java.opts.jobmanager", "-Xmx3g")
    ]


def test_blank_sources_are_dropped() -> None:
    assert java_opts_sources({"env.java.opts.jobmanager": "   ", "env.java.opts.all": '""'}, {}, JOBMANAGER) == []


def test_role_opts() -> None:
    assert role_opts({"env.java.opts.jobmanager": "-Xmx1g"}, {}, JOBMANAGER) == [
        ("env.java.default-opts.jobmanager", ""),
        ("env.java.opts.jobmanager", "-Xmx1g"),
    ]
    assert role_opts({"env.java.opts.jobmanager": "-Xmx1g"}, {"FLINK_ENV_JAVA_OPTS_JM": "-Xms1g"}, JOBMANAGER) == [
        ("env FLINK_ENV_JAVA_OPTS_JM", "-Xms1g")
    ]


def test_with_memory_flags_replaces_and_appends() -> None:
    memory = resolve_jobmanager({"jobmanager.memory.process.size": "1600m"}, FlinkVersion(2, 3))
    result = with_memory_flags("-XX:+UseG1GC -Xmx4g -Dname='a b' -XX:MaxMetaspaceSize=1g -Xss1m", memory)
    tokens = shlex.split(result)
    assert tokens == [
        "-XX:+UseG1GC",
        "-Dname=a b",
        "-Xss1m",
        "-Xmx1073741824",
        "-Xms1073741824",
        "-XX:MaxMetaspaceSize=268435456",
    ]
    # The derived flags come last, so they are the ones HotSpot keeps.
    assert memory_flags(result)[-3:] == [
        JvmMemoryFlag("-Xmx1073741824", "heap-max", 1073741824),
        JvmMemoryFlag("-Xms1073741824", "heap-initial", 1073741824),
        JvmMemoryFlag("-XX:MaxMetaspaceSize=268435456", "metaspace", 268435456),
    ]


def test_with_memory_flags_on_empty_options() -> None:
    memory = resolve_jobmanager(
        {"jobmanager.memory.process.size": "1600m", "jobmanager.memory.enable-jvm-direct-memory-limit": "true"},
        FlinkVersion(2, 3),
    )
    assert with_memory_flags("", memory) == (
        "-Xmx1073741824 -Xms1073741824 -XX:MaxDirectMemorySize=134217728 -XX:MaxMetaspaceSize=268435456"
    )


# ---------------------------------------------------------------------------------------------
# Sizes beyond what HotSpot reads, and options of any length. What the JVM does was checked with
# Java 17: `-Xmx18446744073709551616` and `-Xmx17179869184g` (2^64 bytes) stop it with "Invalid
# maximum heap size", `-XX:MaxMetaspaceSize=99999999999999999999` with "Improperly specified VM
# option"; `-XX:MaxMetaspaceSize=18446744073709551615` and `-Xmx000…0001g` start it.

JVM_LIMIT = 2**64 - 1


@pytest.mark.parametrize(
    ("token", "kind", "size"),
    [
        ("-Xmx18446744073709551615", "heap-max", JVM_LIMIT),
        ("-XX:MaxMetaspaceSize=18446744073709551615", "metaspace", JVM_LIMIT),
        ("-Xmx17179869183g", "heap-max", (2**34 - 1) * GIB),
        ("-Xmx" + "0" * 5000 + "1g", "heap-max", GIB),
    ],
)
def test_sizes_the_jvm_reads(token: str, kind: str, size: int) -> None:
    assert memory_flags(token) == [JvmMemoryFlag(token, kind, size)]


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("-Xmx18446744073709551616", "heap-max"),
        ("-Xmx17179869184g", "heap-max"),
        ("-Xms99999999999999999999", "heap-initial"),
        ("-XX:MaxMetaspaceSize=99999999999999999999", "metaspace"),
        ("-XX:MaxDirectMemorySize=16777216t", "direct"),
    ],
)
def test_sizes_beyond_the_jvm_are_reported(token: str, kind: str) -> None:
    (flag,) = memory_flags(f"-Dx=1 {token} -Dy=2")
    assert (flag.text, flag.kind, flag.size) == (token, kind, 2**64)
    assert (
        flag.problem
        == f"{token} is more than the JVM can read (at most {JVM_LIMIT} bytes), so the JVM refuses to start"
    )


def test_a_5000_digit_heap_is_reported_not_converted() -> None:
    # Python would refuse to convert it (4300 digits at most); the JVM refuses to start with it.
    with cpu_deadline("a 5000-digit heap"):
        (flag,) = memory_flags("-Xmx" + "1" * 5000)
    assert flag.text == "-Xmx11111111111111111111…(5,000 digits)"
    assert (flag.kind, flag.size) == ("heap-max", 2**64)
    assert flag.problem is not None and flag.problem.startswith(flag.text + " is more than the JVM can read")
    # Replacing the memory flags drops it like any other heap flag.
    memory = resolve_jobmanager({"jobmanager.memory.process.size": "1600m"}, FlinkVersion(2, 3))
    assert "-Xmx1" + "1" * 100 not in with_memory_flags("-Xmx" + "1" * 5000 + "m -Da=b", memory)


def test_non_ascii_digits_are_no_size() -> None:
    # HotSpot's strtoull reads ASCII digits only; like -Xmxfoo, such a token is not a size flag here.
    assert memory_flags("-Xmx\u0661\u0662g -Xms\uff11g") == []


@settings(max_examples=3000)
@given(SHELL_TEXT)
def test_options_split_as_shlex_splits_them(opts: str) -> None:
    assert memory_flags(opts) == memory_flags(" ".join(shlex.quote(t) for t in shlex_or_split(opts)))


@pytest.mark.parametrize(
    "opts",
    [
        "-Xmx" + "1" * 3_000_000,  # one token: shlex would take minutes
        " ".join(["-Dx=y"] * 500_000),
        "-Dx='" + "a b" * 1_000_000 + "'",
        '"' + "\\x" * 1_000_000 + '"',
        "\\ " * 1_000_000,
        "\\a " * 1_000_000,
        "'\"' " * 750_000,
        "-Xmx1g" + " " * 3_000_000,
        " " * 3_000_000 + "'",
    ],
)
def test_options_of_megabytes_split_in_linear_time(opts: str) -> None:
    with cpu_deadline(f"splitting {len(opts):,} characters"):
        memory_flags(opts)
