"""Option values that sit on the edges of Flink's parsers, for the random case generator.

Each pool is plain data: texts Flink's `MemorySize.parse`, `Float.parseFloat`, `Double.parseDouble`,
`Integer.parseInt` and the boolean converter accept, reject, or read in a surprising way (Java
`trim` removes every character up to U+0020 and nothing else; only ASCII digits count; `f`/`d`
suffixes and hex floats are Java numbers; `yes` is not a boolean).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BAD_SIZES",
    "BOOLEANS",
    "DOUBLES",
    "FRACTIONS_INVALID",
    "FRACTIONS_VALID",
    "HEAP_MB_VALUES",
    "HUGE_SIZES",
    "IRRELEVANT",
    "NICE_SIZES",
    "NOT_TRIMMED",
    "TRIMMED",
    "UNIT_SPELLINGS",
]

KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40

UNIT_SPELLINGS: Final[dict[int, tuple[str, ...]]] = {
    1: ("", "b", "bytes"),
    KIB: ("k", "kb", "kibibytes"),
    MIB: ("m", "mb", "mebibytes"),
    GIB: ("g", "gb", "gibibytes"),
    TIB: ("t", "tb", "tebibytes"),
}

# Characters Java's String.trim() removes (everything <= U+0020), and some it keeps.
TRIMMED: Final = (" ", "  ", "\t", "\n", "\r\n", " \t ", "\x0b", "\x0c", "\x1f", "\x00")
NOT_TRIMMED: Final = ("\u00a0", "\u2003", "\u3000", "\u200b", "\ufeff")

# fmt: off
NICE_SIZES: Final = (
    "512m", "768m", "1g", "1024m", "1600m", "1728m", "2g", "2048m", "2560m", "3g", "3000m", "4g", "4096m",
    "5g", "6g", "8g", "8192m", "10g", "12g", "16g", "20g", "24g", "32g", "48g", "64g", "1gb", "2 GB",
    "1536 mb", "4G", "2 gibibytes",
)

BAD_SIZES: Final = (
    "", " ", "\t", "   \t\n", "1.5g", "0.5m", "-1g", "-0", "+1g", "+0", "abc", "m", "g1", "1600mib",
    "1600 MiB", "1 kib", "2 gib", "1600p", "1600 kilobytes", "1_000", "1_600m", "1,600m", "1e3", "1E3m",
    "0x100", "0x1p10", "1600 m b", "1600mm", "16 16 bytes", "1600m.", "[1600m]", '"1600m"', "'1600m'",
    "1600m\u00a0", "\u00a01600m", "\u0661\u0666\u0660\u0660m", "\uff11\uff16\uff10\uff10m", "1600\u2003m",
    "NaN", "Infinity", "null", "true", "1600 bytes bytes", "1600b b", "1600 \u212ab", "1600\u212a",
)

HUGE_SIZES: Final = (
    "9223372036854775807", "9223372036854775807b", "9223372036854775808", "99999999999999999999",
    "8388607t", "8388608t", "8388607 TB", "8589934591g", "8589934592g", "8796093022207m", "8796093022208m",
    "9007199254740991k", "9007199254740992k", "99999999999t", "100000000000000 tb",
    "100000000000000000000000000000000 bytes", "000000000000000000000000000000000000001600m",
    "0000000000000000000000009223372036854775807", "4096t", "4095t", "4194303m", "4194304m",
    "2147483647m", "2147483648m", "1t", "1000t",
)

FRACTIONS_VALID: Final = (
    "0.1", "0.25", "0.2", "0.3f", "0.5", "0", "0.0", "-0.0", "-0", "+0.25", "0.05", "0.15", "0.99", "0.999",
    "0.9999999", "0.99999994", "0.99999997", "0.999999999", "1e-1", "1E-1", "2.5e-1", "1e-50", "1e-46",
    "1.4e-45", "1e-45", "0x1p-3", "0X1.8P-1f", "0x.8p0", "0x1p-149", "0x0p0", "0.1f", "0.1F", "0.1d",
    "0.1D", ".5", "5.e-1", " 0.2 ", "\t0.3\n", "0.1000000014901161193847656250001",
    "0.10000000149011611938476562", "0.333333333333333333333333333333333333", "00000.125",
)

FRACTIONS_INVALID: Final = (
    "1", "1.0", "1.5", "-0.1", "-1e-45", "NaN", "-NaN", "Infinity", "-Infinity", "+Infinity", "3.5e38",
    "0.99999998", "nan", "inf", ".inf", "infinity", "abc", "", " ", "1_0", "0.1.2", "1e", "e1", "0x1.8",
    "0.1ff", "0.1 f", "10%", "1/10", "0,1", "\u0660.\u0661", "0.1\u00a0", "0x", "0xp1", "true",
)

BOOLEANS: Final = (
    "true", "TRUE", "True", "tRuE", "false", "FALSE", "False", "fAlSe", "yes", "no", "on", "off", "1", "0",
    " true", "true ", "\ttrue", "false\n", "", "t", "f", "truee", "tru", "'true'", '"true"', "\u0131rue",
)

# kubernetes.jobmanager.memory.limit-factor (a Double option; must be >= 1).
DOUBLES: Final = (
    "1", "1.0", "1.5", "2", "1.33", "1.001", "1.0000000000000002", "0.9999999999999999", "0.5", "0.99", "0",
    "-1", "-0.0", "NaN", "Infinity", "-Infinity", "1e10", "1E2", "1e308", "1e400", "0x1p1", "0x1.8p0",
    "1.5d", "1.5f", "1.1F", " 1.5 ", "\t2\n", "abc", "", " ", "1_0", "inf", "nan", "3.4028235e38",
    "2147483647", "2147483648", "1.0000001", "2.000000000000000000000000000001",
)

# jobmanager.heap.mb (an Integer option of 1.x; Integer.parseInt, no trimming).
HEAP_MB_VALUES: Final = (
    "1024", "2048", "512", "100", "0", "-1", "-1024", "+1024", " 1024", "1024 ", "1024m", "1e3", "1024.0",
    "2147483647", "2147483648", "-2147483648", "00001024", "", "abc", "8796093022207", "0x400",
    "\u0661\u0660\u0662\u0664",
)
# fmt: on

# Keys no JobManager memory resolution reads (near misses of real keys included).
IRRELEVANT: Final[tuple[tuple[str, str], ...]] = (
    ("taskmanager.memory.process.size", "1728m"),
    ("JobManager.Memory.Process.Size", "2g"),
    ("jobmanager.memory.process.size ", "3g"),
    (" jobmanager.memory.heap.size", "1g"),
    ("jobmanager.memory.heap", "1g"),
    ("jobmanager.memory.process", "1g"),
    ("kubernetes.jobmanager.cpu", "2.5"),
    ("kubernetes.jobmanager.cpu.limit-factor", "0.5"),
    ("jobmanager.memory.jvm-overhead.fraction.extra", "2"),
    ("env.java.opts.jobmanager", "-Xmx8g"),
    ("taskmanager.memory.jvm-overhead.fraction", "abc"),
)
