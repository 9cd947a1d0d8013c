"""Seeded random JobManager configurations for the differential tests, plus the verified vectors.

`generate(version, n, seed)` returns `n` records in flinkmem's batch-input format
(`{"id", "config": {key: str}, "mode"?, "flinkVersion"?}`), the same for the same arguments. Each
record comes from one family that stresses one corner of Flink's resolution: realistic settings,
consistent specs shown through subsets of their options (and nudged by a byte), unit spellings and
whitespace, malformed values, sizes near 2^63, the fraction grammar and float32 rounding, booleans,
the 1.x legacy heap keys, the Kubernetes limit factor, the thresholds of every check, and chaos.
The family is the last part of the id. `spec_vectors()` gives the verified vectors (see vectors.py).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Final, TypeAlias

from tests.differential.values import (
    BAD_SIZES,
    BOOLEANS,
    DOUBLES,
    FRACTIONS_INVALID,
    FRACTIONS_VALID,
    HEAP_MB_VALUES,
    HUGE_SIZES,
    IRRELEVANT,
    NICE_SIZES,
    NOT_TRIMMED,
    TRIMMED,
    UNIT_SPELLINGS,
)
from tests.differential.vectors import (
    ALL_KEYS,
    DEFAULT_METASPACE,
    DEFAULT_OFF_HEAP,
    DEFAULT_OVERHEAD_MAX,
    DEFAULT_OVERHEAD_MIN,
    DIRECT_LIMIT,
    FLINK,
    FRACTION,
    GIB,
    HEAP,
    KIB,
    LEGACY_HEAP,
    LEGACY_HEAP_MB,
    LIMIT_FACTOR,
    LONG_MAX,
    MEMORY_KEYS,
    METASPACE,
    MIB,
    OFF_HEAP,
    OVERHEAD_MAX,
    OVERHEAD_MIN,
    PROCESS,
    TIB,
    Record,
    spec_vectors,
    version_line,
)

__all__ = ["FAMILIES", "Record", "families", "generate", "render_size", "spec_vectors"]

Rng: TypeAlias = random.Random
Config: TypeAlias = dict[str, str]


def _decimal_text(value: Fraction, digits: int = 80) -> str:
    with localcontext() as context:
        context.prec = digits
        text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text


def _float32_boundary_fraction(rng: Rng) -> str:
    """A decimal text at, or a hair off, the midpoint between two adjacent float32 values in (0, 1)."""
    bits = rng.randint(0x3C000000, 0x3F7FFFFE)
    low = Fraction(struct.unpack(">f", bits.to_bytes(4, "big"))[0])
    high = Fraction(struct.unpack(">f", (bits + 1).to_bytes(4, "big"))[0])
    midpoint = (low + high) / 2
    nudge = Fraction(rng.choice((-1, 1)), 10 ** rng.randint(12, 45))
    value = midpoint + rng.choice((Fraction(0), nudge, nudge / 1000))
    return _decimal_text(value)


def _random_case(rng: Rng, text: str) -> str:
    roll = rng.random()
    if roll < 0.65:
        return text
    if roll < 0.85:
        return text.upper()
    return "".join(char.upper() if rng.random() < 0.5 else char for char in text)


def render_size(rng: Rng, size: int) -> str:
    """`size` bytes spelled in one of the ways MemorySize.parse accepts (unit, case, spaces, zeros)."""
    units = [unit for unit in (TIB, GIB, MIB, KIB, 1) if size % unit == 0]
    unit = units[0] if rng.random() < 0.6 else rng.choice(units)
    spelling = _random_case(rng, rng.choice(UNIT_SPELLINGS[unit]))
    number = str(size // unit)
    if rng.random() < 0.05:
        number = "0" * rng.randint(1, 25) + number
    separator = "" if rng.random() < 0.75 else rng.choice((" ", "  ", "\t", " \t"))
    text = number + (separator + spelling if spelling else "")
    if rng.random() < 0.12:
        text = rng.choice(TRIMMED) + text
    if rng.random() < 0.12:
        text += rng.choice(TRIMMED)
    return text


def _size(rng: Rng, low: int, high: int, granularity: int = 1) -> int:
    return rng.randint(low // granularity, high // granularity) * granularity


def _plausible(rng: Rng, key: str) -> int:
    """A size of the order an operator would configure for `key`."""
    grain = rng.choice((MIB, MIB, MIB, KIB, GIB, 1))
    if key in (PROCESS, FLINK, HEAP, LEGACY_HEAP):
        return _size(rng, 0, 64 * GIB, grain)
    if key == OFF_HEAP:
        return _size(rng, 0, 2 * GIB, grain)
    if key == METASPACE:
        return _size(rng, 0, GIB, grain)
    return _size(rng, 0, 2 * GIB, grain)  # overhead min/max


def _memory_value(rng: Rng, key: str) -> str:
    roll = rng.random()
    if roll < 0.7:
        return render_size(rng, _plausible(rng, key))
    if roll < 0.82:
        return rng.choice(BAD_SIZES)
    if roll < 0.85:
        valid = render_size(rng, _plausible(rng, key))
        return rng.choice((valid + rng.choice(NOT_TRIMMED), rng.choice(NOT_TRIMMED) + valid))
    if roll < 0.95:
        return rng.choice(HUGE_SIZES)
    return render_size(rng, rng.randint(0, 4096))


def _fraction_value(rng: Rng) -> str:
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(FRACTIONS_VALID)
    if roll < 0.65:
        return rng.choice(FRACTIONS_INVALID)
    if roll < 0.8:
        return _float32_boundary_fraction(rng)
    digits = rng.randint(1, 12)
    text = f"0.{rng.randint(0, 10**digits - 1):0{digits}d}"
    if roll < 0.9:
        return text
    return rng.choice(TRIMMED) + text + rng.choice((*TRIMMED, *NOT_TRIMMED, "f", "d", "e0", "E-0"))


def _value(rng: Rng, key: str) -> str:
    if key in MEMORY_KEYS or key == LEGACY_HEAP:
        return _memory_value(rng, key)
    if key == FRACTION:
        return _fraction_value(rng)
    if key == DIRECT_LIMIT:
        return rng.choice(BOOLEANS)
    if key == LIMIT_FACTOR:
        return rng.choice(DOUBLES)
    return rng.choice(HEAP_MB_VALUES)


def _maybe_extras(rng: Rng, config: Config, *, probability: float = 0.3) -> Config:
    """Sprinkles the options that do not size anything by themselves."""
    if rng.random() < probability:
        config[DIRECT_LIMIT] = (
            rng.choice(("true", "false", "TRUE", "True")) if rng.random() < 0.8 else rng.choice(BOOLEANS)
        )
    if rng.random() < probability / 2:
        config[LIMIT_FACTOR] = (
            rng.choice(("1", "1.0", "1.5", "2", "1.25")) if rng.random() < 0.7 else rng.choice(DOUBLES)
        )
    if rng.random() < 0.05:
        key, value = rng.choice(IRRELEVANT)
        config[key] = value
    return config


# --- families ---------------------------------------------------------------------------------


def _realistic(rng: Rng) -> Config:
    config: Config = {}
    shape = rng.choice(("process", "process", "process", "flink", "heap", "heap+process", "flink+process"))
    for key in {"process": (PROCESS,), "flink": (FLINK,), "heap": (HEAP,)}.get(shape, ()):
        config[key] = rng.choice(NICE_SIZES)
    if shape == "heap+process":
        config[HEAP], config[PROCESS] = rng.choice(
            (("1g", "1600m"), ("2g", "2752m"), ("4g", "5g"), ("512m", "1g"), ("3g", "4g"), ("6g", "7g"))
        )
    if shape == "flink+process":
        config[FLINK], config[PROCESS] = rng.choice(
            (("1g", "1600m"), ("1280m", "1728m"), ("3g", "4g"), ("7g", "8g"), ("1g", "1200m"), ("2g", "3g"))
        )
    if rng.random() < 0.3:
        config[OFF_HEAP] = rng.choice(("64m", "128m", "256m", "512m", "1g", "0"))
    if rng.random() < 0.3:
        config[METASPACE] = rng.choice(("128m", "192m", "256m", "384m", "512m"))
    if rng.random() < 0.25:
        config[FRACTION] = rng.choice(("0.1", "0.15", "0.2", "0.25", "0.05", "0.3"))
    if rng.random() < 0.2:
        config[OVERHEAD_MIN] = rng.choice(("64m", "128m", "192m", "256m", "512m"))
    if rng.random() < 0.2:
        config[OVERHEAD_MAX] = rng.choice(("512m", "1g", "2g", "4g", "256m"))
    return _maybe_extras(rng, config)


def _consistent(rng: Rng) -> Config:
    """A spec that Flink accepts, shown through a random subset of its options; sometimes off by a hair."""
    heap = _size(rng, 0, 32 * GIB, rng.choice((1, KIB, MIB)))
    off = rng.choice((DEFAULT_OFF_HEAP, _size(rng, 0, 2 * GIB, rng.choice((1, MIB)))))
    meta = rng.choice((DEFAULT_METASPACE, _size(rng, 0, GIB, rng.choice((1, MIB)))))
    explicit_range = rng.random() < 0.5
    low, high = (
        sorted((_size(rng, 0, 2 * GIB, rng.choice((1, MIB))), _size(rng, 0, 2 * GIB, rng.choice((1, MIB)))))
        if explicit_range
        else (DEFAULT_OVERHEAD_MIN, DEFAULT_OVERHEAD_MAX)
    )
    overhead = rng.choice((low, high, rng.randint(low, high)))
    flink = heap + off
    process = flink + meta + overhead
    shown: tuple[str, ...] = rng.choice(
        ((HEAP,), (FLINK,), (PROCESS,), (HEAP, FLINK), (HEAP, PROCESS), (FLINK, PROCESS))
    )
    if rng.random() < 0.15:
        shown = (HEAP, FLINK, PROCESS)
    values = {HEAP: heap, FLINK: flink, PROCESS: process, OFF_HEAP: off, METASPACE: meta}
    values |= {OVERHEAD_MIN: low, OVERHEAD_MAX: high}
    config: Config = {key: render_size(rng, values[key]) for key in shown}
    if off != DEFAULT_OFF_HEAP or rng.random() < 0.3:
        config[OFF_HEAP] = render_size(rng, off)
    if meta != DEFAULT_METASPACE or rng.random() < 0.3:
        config[METASPACE] = render_size(rng, meta)
    if explicit_range or rng.random() < 0.2:
        config[OVERHEAD_MIN] = render_size(rng, low)
        config[OVERHEAD_MAX] = render_size(rng, high)
    if rng.random() < 0.3:
        # Break one relation by a byte or a mebibyte (E4, E5, E7, E9 and their exact boundaries).
        key = rng.choice(list(config))
        delta = rng.choice((-1, 1, -MIB, MIB))
        config[key] = render_size(rng, max(0, values[key] + delta))
    if rng.random() < 0.2:
        config[FRACTION] = rng.choice(("0.1", "0.2", "0.5", "0", "0.99"))
    return _maybe_extras(rng, config)


def _spellings(rng: Rng) -> Config:
    """One memory option spelled every way MemorySize accepts, on top of a working base."""
    base: Config = rng.choice(({PROCESS: "2g"}, {FLINK: "1500m"}, {HEAP: "1g"}, {}))
    config = dict(base)
    key = rng.choice((*MEMORY_KEYS, PROCESS, FLINK, HEAP))
    config[key] = render_size(rng, _plausible(rng, key))
    if rng.random() < 0.3:
        other = rng.choice(MEMORY_KEYS)
        config[other] = render_size(rng, _plausible(rng, other))
    return _maybe_extras(rng, config, probability=0.15)


def _bad_values(rng: Rng) -> Config:
    config: Config = dict(rng.choice(({PROCESS: "2g"}, {FLINK: "1500m"}, {HEAP: "1g"}, {})))
    key = rng.choice((*MEMORY_KEYS, PROCESS, FLINK, HEAP))
    config[key] = rng.choice(BAD_SIZES)
    if rng.random() < 0.2:
        config[rng.choice(MEMORY_KEYS)] = rng.choice(BAD_SIZES)
    return _maybe_extras(rng, config, probability=0.15)


def _huge(rng: Rng) -> Config:
    config: Config = {}
    key = rng.choice((PROCESS, FLINK, HEAP, HEAP, OFF_HEAP, METASPACE, OVERHEAD_MIN, OVERHEAD_MAX))
    config[key] = (
        rng.choice(HUGE_SIZES) if rng.random() < 0.7 else render_size(rng, rng.randint(LONG_MAX // 2, LONG_MAX))
    )
    if key not in (PROCESS, FLINK, HEAP):
        config[rng.choice((PROCESS, FLINK, HEAP))] = rng.choice((*HUGE_SIZES, "1g", "2g", "100t"))
    for other in (OFF_HEAP, METASPACE, OVERHEAD_MAX, OVERHEAD_MIN, FLINK, PROCESS):
        if other not in config and rng.random() < 0.2:
            config[other] = rng.choice((*HUGE_SIZES, "0", "1t", "1g"))
    if rng.random() < 0.4:
        config[FRACTION] = rng.choice(("0.9999999", "0.99999994", "0.5", "0.1", "0.999", "0"))
    if rng.random() < 0.3:
        # The sum of heap and the remaining components lands just above or below 2^63 - 1.
        heap = LONG_MAX - rng.choice((0, 1, 384 * MIB, 384 * MIB + 1, 1664 * MIB, 1664 * MIB - 1, GIB, TIB))
        config = {HEAP: str(max(0, heap))}
        if rng.random() < 0.5:
            config[OVERHEAD_MAX] = rng.choice(("0", "192m", "1g", "1t"))
    return _maybe_extras(rng, config, probability=0.2)


def _fractions(rng: Rng) -> Config:
    """Fraction grammar and float32 rounding; min/max opened up so the raw product is visible."""
    sizing = rng.choice((PROCESS, PROCESS, FLINK, HEAP))
    config: Config = {sizing: render_size(rng, _size(rng, 0, 64 * GIB, rng.choice((1, KIB, MIB))))}
    config[FRACTION] = _fraction_value(rng)
    if rng.random() < 0.7:
        config[OVERHEAD_MIN] = rng.choice(("0", "0b", "1b", "0m"))
        config[OVERHEAD_MAX] = rng.choice(("1t", "8388607t", "100g", "9223372036854775807"))
    elif rng.random() < 0.5:
        config[OVERHEAD_MIN] = render_size(rng, _plausible(rng, OVERHEAD_MIN))
    if rng.random() < 0.15 and sizing != PROCESS:
        config[PROCESS] = render_size(rng, _size(rng, 0, 64 * GIB, MIB))
    return _maybe_extras(rng, config, probability=0.15)


def _booleans(rng: Rng) -> Config:
    config: Config = dict(rng.choice(({PROCESS: "1600m"}, {HEAP: "1g"}, {FLINK: "2g"}, {PROCESS: "100m"}, {})))
    config[DIRECT_LIMIT] = rng.choice(BOOLEANS)
    if rng.random() < 0.3:
        config[OFF_HEAP] = render_size(rng, _plausible(rng, OFF_HEAP))
    return _maybe_extras(rng, config, probability=0.1)


def _legacy(rng: Rng) -> Config:
    """jobmanager.heap.size / jobmanager.heap.mb: mapped by 1.x (per mode), ignored by 2.x."""
    config: Config = {}
    if rng.random() < 0.7:
        config[LEGACY_HEAP] = (
            render_size(rng, _plausible(rng, LEGACY_HEAP)) if rng.random() < 0.75 else _memory_value(rng, HEAP)
        )
    if rng.random() < 0.5 or not config:
        config[LEGACY_HEAP_MB] = str(rng.randint(0, 65536)) if rng.random() < 0.6 else rng.choice(HEAP_MB_VALUES)
    for key in (HEAP, FLINK, PROCESS):
        if rng.random() < 0.2:
            config[key] = render_size(rng, _plausible(rng, key))
    if rng.random() < 0.2:
        config[OFF_HEAP] = render_size(rng, _plausible(rng, OFF_HEAP))
    return _maybe_extras(rng, config, probability=0.2)


def _limit_factor(rng: Rng) -> Config:
    config: Config = {rng.choice((PROCESS, FLINK, HEAP)): render_size(rng, _size(rng, 0, 64 * GIB, MIB))}
    if rng.random() < 0.2:
        config = {PROCESS: rng.choice(("4096t", "4095t", "2047m", "1000000001", "8388607t", "2g"))}
    roll = rng.random()
    if roll < 0.6:
        config[LIMIT_FACTOR] = rng.choice(DOUBLES)
    elif roll < 0.85:
        config[LIMIT_FACTOR] = f"{rng.uniform(1, 4):.{rng.randint(1, 17)}f}"
    else:
        config[LIMIT_FACTOR] = repr(rng.uniform(1, 1e6))
    return config


def _boundaries(rng: Rng) -> Config:
    """Exactly at, and a byte around, the thresholds of the checks."""
    delta = rng.choice((-2, -1, 0, 0, 1, 2))
    choice = rng.randrange(8)
    if choice == 0:  # E3 / heap warning in process mode: 576m is flink == off-heap
        return {PROCESS: render_size(rng, rng.choice((576, 577, 704, 703, 705)) * MIB + delta)}
    if choice == 1:  # the overhead fraction reaching min (about 1920m) or max (about 10g)
        return {PROCESS: render_size(rng, rng.choice((2013265920, 10737418240, 10737418230)) + delta * 7)}
    if choice == 2:  # the heap warning in heap / flink mode
        key = rng.choice((HEAP, FLINK))
        base = 128 * MIB if key == HEAP else 256 * MIB
        return {key: render_size(rng, base + delta)}
    if choice == 3:  # flink == off-heap (E3, strict)
        off = _size(rng, 0, GIB, MIB)
        return {FLINK: render_size(rng, off + delta), OFF_HEAP: render_size(rng, off)}
    if choice == 4:  # metaspace + overhead == process (E2 boundary)
        meta, overhead = _size(rng, 0, GIB, MIB), _size(rng, 0, GIB, MIB)
        return {
            PROCESS: render_size(rng, meta + overhead + max(0, delta)),
            METASPACE: render_size(rng, meta),
            OVERHEAD_MIN: render_size(rng, overhead),
            OVERHEAD_MAX: render_size(rng, overhead),
        }
    if choice == 5:  # derived overhead exactly at min / max with process + flink (E7 bounds)
        flink, meta = _size(rng, 200 * MIB, 8 * GIB, MIB), DEFAULT_METASPACE
        bound = rng.choice((DEFAULT_OVERHEAD_MIN, DEFAULT_OVERHEAD_MAX))
        return {FLINK: render_size(rng, flink), PROCESS: render_size(rng, flink + meta + bound + delta)}
    if choice == 6:  # heap + off-heap vs flink (E4 / E5 bounds)
        heap = _size(rng, 0, 4 * GIB, MIB)
        config = {HEAP: render_size(rng, heap), FLINK: render_size(rng, heap + DEFAULT_OFF_HEAP + delta)}
        if rng.random() < 0.5:
            config[OFF_HEAP] = render_size(rng, DEFAULT_OFF_HEAP)
        return config
    # min == max == the raw fraction product (clamping on both sides)
    process = _size(rng, GIB, 16 * GIB, MIB)
    raw = int(Fraction(process) * Fraction("0.10000000149011612"))
    return {PROCESS: render_size(rng, process), OVERHEAD_MIN: str(raw + delta), OVERHEAD_MAX: str(raw + abs(delta))}


def _chaos(rng: Rng) -> Config:
    keys = rng.sample(ALL_KEYS, rng.randint(1, 7))
    config = {key: _value(rng, key) for key in keys}
    return _maybe_extras(rng, config, probability=0.1)


FAMILIES: Final[tuple[tuple[str, Callable[[Rng], Config], int], ...]] = (
    ("realistic", _realistic, 14),
    ("consistent", _consistent, 15),
    ("spellings", _spellings, 12),
    ("bad", _bad_values, 8),
    ("huge", _huge, 8),
    ("fractions", _fractions, 13),
    ("booleans", _booleans, 5),
    ("legacy", _legacy, 9),
    ("limit-factor", _limit_factor, 5),
    ("boundaries", _boundaries, 8),
    ("chaos", _chaos, 10),
)


def version_spellings(version: str) -> tuple[str, ...]:
    """The ways a record may name `version`'s line: `1.20`, `1.20.3`, `v1_20`."""
    major, minor = version_line(version).split(".")
    return (f"{major}.{minor}", version, f"v{major}_{minor}")


def generate(version: str, n: int, seed: int) -> list[Record]:
    """`n` random batch-input records for Flink `version`, the same for the same (version, n, seed)."""
    rng = random.Random(f"flinkmem:{version}:{seed}")
    weights = [weight for _, _, weight in FAMILIES]
    spellings = version_spellings(version)
    records: list[Record] = []
    # Every family at least once, then by weight.
    order = list(range(len(FAMILIES))) + rng.choices(range(len(FAMILIES)), weights=weights, k=max(0, n))
    for index, family in enumerate(order[:n]):
        name, builder, _ = FAMILIES[family]
        record: Record = {"id": f"{version}/{seed}/{index:06d}/{name}", "config": builder(rng)}
        roll = rng.random()
        if roll < 0.35:
            record["mode"] = "native"
        elif roll < 0.7:
            record["mode"] = "standalone"
        if rng.random() < 0.4:
            record["flinkVersion"] = rng.choice(spellings)
        records.append(record)
    return records


def families(records: Sequence[Record]) -> dict[str, int]:
    """How many generated records each family contributed (from the ids)."""
    counts: dict[str, int] = {}
    for record in records:
        name = str(record["id"]).rsplit("/", 1)[-1]
        counts[name] = counts.get(name, 0) + 1
    return counts
