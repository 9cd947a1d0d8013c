"""Seeded random TaskManager configurations for the differential tests.

`generate(version, n, seed)` returns `n` batch records with `"role": "taskmanager"`, the same for
the same arguments. Each record comes from one family that stresses one corner of Flink's
TaskManager resolution: realistic production sets, consistent specs on each derivation path (and
nudged by a byte), unit spellings, malformed values, sizes near 2^63, fractions on the float32 grid
and at their bounds, min/max ranges, CPU/slots/extended resources, the legacy and deprecated keys,
the thresholds of every check, and chaos. The family is the last part of the id.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final, TypeAlias

from tests.differential.cases import _float32_boundary_fraction, render_size
from tests.differential.tmvectors import (
    BUFFERS,
    CPU,
    FH,
    FO,
    K8S_CPU,
    LEGACY,
    LEGACY_MB,
    MAN,
    META,
    MF,
    NF,
    NMAX,
    NMIN,
    OF,
    OLD_MANAGED,
    OLD_NF,
    OLD_NMAX,
    OLD_NMIN,
    OMAX,
    OMIN,
    SEGMENT,
    SLOTS,
    TH,
    TO,
    F,
    P,
)
from tests.differential.values import (
    BAD_SIZES,
    DOUBLES,
    FRACTIONS_INVALID,
    FRACTIONS_VALID,
    HEAP_MB_VALUES,
    HUGE_SIZES,
    NOT_TRIMMED,
    TRIMMED,
)
from tests.differential.vectors import GIB, KIB, LONG_MAX, MIB, Record, version_line

__all__ = ["ALL_KEYS", "FAMILIES", "SIZE_KEYS", "generate"]

Rng: TypeAlias = random.Random
Config: TypeAlias = dict[str, str]

EXT = "external-resources"
GPU, FPGA = "external-resource.gpu.amount", "external-resource.fpga.amount"
K8S_CPU_OLD = "kubernetes.taskmanager.cpu"
SIZE_KEYS: Final = (P, F, TH, TO, FH, FO, MAN, NMIN, NMAX, META, OMIN, OMAX)
FRACTION_KEYS: Final = (MF, NF, OF)
DEPRECATED_KEYS: Final = (OLD_MANAGED, OLD_NMIN, OLD_NMAX, OLD_NF)
ALL_KEYS: Final = (
    *SIZE_KEYS,
    *FRACTION_KEYS,
    *DEPRECATED_KEYS,
    SLOTS,
    CPU,
    K8S_CPU,
    EXT,
    LEGACY,
    LEGACY_MB,
    BUFFERS,
    SEGMENT,
)

# fmt: off
SLOT_VALUES: Final = (
    "1", "2", "4", "8", "16", "0", "-1", "-2", "3", " 2", "2 ", "+4", "1.0", "abc", "", "2147483648", "007",
)
CPU_VALUES: Final = (
    "1", "2", "0.5", "1.5", "4.0", "0.000000001", "0.00000001", "0.123456789", "1e-4", "1E2", "0", "-0.0", "-1",
    "NaN", "Infinity", "-Infinity", "abc", "", " 2 ", "2d", "0x1p1", "1e308", "12345678.987654321",
)
EXT_VALUES: Final = (
    "gpu", "gpu;fpga", "fpga;gpu", "[gpu, fpga]", "none", "", " gpu ; fpga ", "gpu;;fpga", "gpu;gpu", "NONE",
    "[gpu]", "fpga", "gpu,fpga", "'gpu", "gpu;'fpga'x", "'g;pu';fpga",
    "[\"gpu\", 'fpga']", "[gpu, [fpga]]", "- gpu\n- fpga", "[gpu,]", "--- [gpu]", "[null]", "[gpu, 1e3]",
)
AMOUNT_VALUES: Final = ("1", "2", "4", "0", "-1", "abc", " 1", "9223372036854775807", "9223372036854775808", "1.5")
SEGMENT_VALUES: Final = (
    "32k", "4k", "16k", "64k", "1m", "1000", "4095", "3000b", "2g", "abc", "0", "32768", "48k", "5000",
)
# fmt: on


def _size(rng: Rng, low: int, high: int, granularity: int = 1) -> int:
    return rng.randint(low // granularity, high // granularity) * granularity


def _grain(rng: Rng) -> int:
    return rng.choice((MIB, MIB, MIB, KIB, GIB, 1))


def _plausible(rng: Rng, key: str) -> int:
    grain = _grain(rng)
    if key in (P, F, LEGACY):
        return _size(rng, 0, 64 * GIB, grain)
    if key in (TH, MAN, OLD_MANAGED):
        return _size(rng, 0, 32 * GIB, grain)
    if key in (NMIN, NMAX, OLD_NMIN, OLD_NMAX):
        return _size(rng, 0, 4 * GIB, grain)
    if key == META:
        return _size(rng, 0, GIB, grain)
    return _size(rng, 0, 2 * GIB, grain)


def _memory_value(rng: Rng, key: str) -> str:
    roll = rng.random()
    if roll < 0.72:
        return render_size(rng, _plausible(rng, key))
    if roll < 0.84:
        return rng.choice(BAD_SIZES)
    if roll < 0.86:
        valid = render_size(rng, _plausible(rng, key))
        return rng.choice((valid + rng.choice(NOT_TRIMMED), rng.choice(NOT_TRIMMED) + valid))
    if roll < 0.95:
        return rng.choice(HUGE_SIZES)
    return render_size(rng, rng.randint(0, 4096))


def _fraction_value(rng: Rng) -> str:
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(FRACTIONS_VALID)
    if roll < 0.62:
        return rng.choice(FRACTIONS_INVALID)
    if roll < 0.77:
        return _float32_boundary_fraction(rng)
    digits = rng.randint(1, 10)
    text = f"0.{rng.randint(0, 10**digits - 1):0{digits}d}"
    if roll < 0.9:
        return text
    return rng.choice(TRIMMED) + text + rng.choice((*TRIMMED, "f", "d", "e0"))


def _value(rng: Rng, key: str) -> str:
    if key in SIZE_KEYS or key in (LEGACY, OLD_MANAGED, OLD_NMIN, OLD_NMAX):
        return _memory_value(rng, key)
    if key in (*FRACTION_KEYS, OLD_NF):
        return _fraction_value(rng)
    if key == SLOTS:
        return rng.choice(SLOT_VALUES)
    if key in (CPU, K8S_CPU):
        return rng.choice((*CPU_VALUES, *DOUBLES))
    if key == EXT:
        return rng.choice(EXT_VALUES)
    if key == SEGMENT:
        return rng.choice(SEGMENT_VALUES)
    if key == BUFFERS:
        return rng.choice(("1024", "2048", "4096", "8192", "0", "-1", "abc", " 1024", "65536"))
    return rng.choice(HEAP_MB_VALUES)


def _extras(rng: Rng, config: Config, probability: float = 0.3) -> Config:
    """CPU, slots and extended resources, which every TaskManager spec reads after the memory."""
    if rng.random() < probability:
        config[SLOTS] = rng.choice(("1", "2", "4", "8")) if rng.random() < 0.8 else rng.choice(SLOT_VALUES)
    if rng.random() < probability / 2:
        config[CPU] = rng.choice(("1", "2", "4", "0.5", "1.5")) if rng.random() < 0.7 else rng.choice(CPU_VALUES)
    if rng.random() < probability / 2:
        config[rng.choice((K8S_CPU, K8S_CPU, K8S_CPU_OLD))] = (
            rng.choice(("1", "2", "0.5", "-1")) if rng.random() < 0.7 else rng.choice(CPU_VALUES)
        )
    if rng.random() < probability / 4:
        _external_resources(rng, config)
    return config


def _external_resources(rng: Rng, config: Config) -> None:
    config[EXT] = rng.choice(EXT_VALUES)
    for key in (GPU, FPGA, "external-resource.none.amount", "external-resource.NONE.amount"):
        if rng.random() < 0.6:
            config[key] = rng.choice(AMOUNT_VALUES[:4]) if rng.random() < 0.75 else rng.choice(AMOUNT_VALUES)


# --- families ---------------------------------------------------------------------------------


def _realistic(rng: Rng) -> Config:
    """Production-like sets: 4-64 GiB processes, RocksDB-sized managed memory, network tuning."""
    process_gib = rng.choice((1.6875, 2, 4, 4, 8, 8, 16, 16, 24, 32, 48, 64))
    config: Config = {
        P: f"{int(process_gib * 1024)}m" if rng.random() < 0.5 else render_size(rng, int(process_gib * GIB))
    }
    if rng.random() < 0.2:
        config = {F: f"{int(process_gib * 1024 * 0.8)}m"}
    if rng.random() < 0.5:
        config[MF] = rng.choice(("0.4", "0.5", "0.6", "0.7", "0.3", "0.25", "0", "0.8"))
        if rng.random() < 0.3:
            config["state.backend.type"] = "rocksdb"
    if rng.random() < 0.4:
        config[NF] = rng.choice(("0.1", "0.15", "0.2", "0.05", "0.3"))
    if rng.random() < 0.35:
        config[NMIN] = rng.choice(("64m", "128m", "256m", "512m", "1g"))
    if rng.random() < 0.35:
        config[NMAX] = rng.choice(("1g", "2g", "4g", "8g", "512m", "256m"))
    if rng.random() < 0.3:
        config[META] = rng.choice(("256m", "384m", "512m", "1g"))
    if rng.random() < 0.25:
        config[OF] = rng.choice(("0.1", "0.15", "0.2", "0.25"))
    if rng.random() < 0.2:
        config[OMAX] = rng.choice(("1g", "2g", "4g"))
    if rng.random() < 0.2:
        config[TO] = rng.choice(("0", "128m", "256m", "512m", "1g"))
    if rng.random() < 0.1:
        config[FH] = rng.choice(("128m", "256m", "64m"))
    if rng.random() < 0.1:
        config[FO] = rng.choice(("128m", "256m", "64m"))
    if rng.random() < 0.15:
        config[MAN] = rng.choice(("1g", "2g", "4g", "8g"))
    return _extras(rng, config, probability=0.6)


def _paths(rng: Rng) -> Config:
    """A consistent spec shown through the options of one derivation path; sometimes off by a hair."""
    fh = rng.choice((128 * MIB, _size(rng, 0, 512 * MIB, rng.choice((1, MIB)))))
    fo = rng.choice((128 * MIB, _size(rng, 0, 512 * MIB, rng.choice((1, MIB)))))
    th = _size(rng, 0, 16 * GIB, rng.choice((1, KIB, MIB)))
    to = rng.choice((0, _size(rng, 0, GIB, MIB)))
    man = _size(rng, 0, 16 * GIB, rng.choice((1, MIB)))
    net = rng.choice((64 * MIB, _size(rng, 0, 4 * GIB, rng.choice((1, MIB)))))
    meta = rng.choice((256 * MIB, _size(rng, 0, GIB, MIB)))
    ovh = rng.choice((192 * MIB, GIB, _size(rng, 192 * MIB, GIB, rng.choice((1, MIB)))))
    flink = fh + fo + th + to + man + net
    process = flink + meta + ovh
    values = {FH: fh, FO: fo, TH: th, TO: to, MAN: man, F: flink, P: process, META: meta, NMIN: net, NMAX: net}
    shown: tuple[str, ...] = rng.choice(
        (
            (TH, MAN),
            (TH, MAN, F),
            (TH, MAN, P),
            (TH, MAN, F, P),
            (F,),
            (F, TH),
            (F, MAN),
            (F, P),
            (P,),
            (P, TH),
            (P, MAN),
        )
    )
    config: Config = {key: render_size(rng, values[key]) for key in shown}
    for key in (FH, FO, TO, META):
        if values[key] not in (128 * MIB, 0, 256 * MIB) or rng.random() < 0.2:
            config[key] = render_size(rng, values[key])
    if rng.random() < 0.4:
        config[NMIN] = render_size(rng, net if rng.random() < 0.7 else _plausible(rng, NMIN))
        config[NMAX] = render_size(rng, net if rng.random() < 0.7 else _plausible(rng, NMAX))
    if rng.random() < 0.3:
        key = rng.choice(list(config))
        delta = rng.choice((-1, 1, -MIB, MIB))
        config[key] = render_size(rng, max(0, values.get(key, 0) + delta))
    if rng.random() < 0.25:
        config[rng.choice((MF, NF, OF))] = rng.choice(("0.1", "0.2", "0.4", "0", "0.5", "0.9"))
    return _extras(rng, config)


def _spellings(rng: Rng) -> Config:
    config: Config = dict(rng.choice(({P: "4g"}, {F: "3g"}, {TH: "1g", MAN: "1g"}, {P: "1728m"}, {})))
    key = rng.choice((*SIZE_KEYS, OLD_MANAGED, OLD_NMIN, OLD_NMAX))
    config[key] = render_size(rng, _plausible(rng, key))
    if rng.random() < 0.3:
        other = rng.choice(SIZE_KEYS)
        config[other] = render_size(rng, _plausible(rng, other))
    return _extras(rng, config, probability=0.15)


def _bad_values(rng: Rng) -> Config:
    config: Config = dict(rng.choice(({P: "4g"}, {F: "3g"}, {TH: "1g", MAN: "1g"}, {})))
    key = rng.choice((*SIZE_KEYS, *FRACTION_KEYS, *DEPRECATED_KEYS, SLOTS, CPU, K8S_CPU, SEGMENT))
    if key in SIZE_KEYS or key in (OLD_MANAGED, OLD_NMIN, OLD_NMAX, SEGMENT):
        config[key] = rng.choice(BAD_SIZES)
    elif key in (*FRACTION_KEYS, OLD_NF):
        config[key] = rng.choice(FRACTIONS_INVALID)
    else:
        config[key] = rng.choice(("abc", "", " ", "1_0", "NaN", "1,5", "0x", "--1"))
    if rng.random() < 0.25:
        second = rng.choice(ALL_KEYS)
        config[second] = _value(rng, second)
    return _extras(rng, config, probability=0.1)


def _huge(rng: Rng) -> Config:
    key = rng.choice((P, F, TH, MAN, TO, FH, FO, NMIN, NMAX, META, OMIN, OMAX))
    config: Config = {
        key: rng.choice(HUGE_SIZES) if rng.random() < 0.7 else render_size(rng, rng.randint(LONG_MAX // 4, LONG_MAX))
    }
    if key not in (P, F):
        config[rng.choice((P, F, TH))] = rng.choice((*HUGE_SIZES, "4g", "100t"))
        if TH in config and MAN not in config and rng.random() < 0.5:
            config[MAN] = rng.choice(("1g", "8388607t", "1t"))
    for other in (NMAX, OMAX, META, MAN, F):
        if other not in config and rng.random() < 0.15:
            config[other] = rng.choice((*HUGE_SIZES, "0", "1t", "1g"))
    if rng.random() < 0.4:
        config[rng.choice(FRACTION_KEYS)] = rng.choice(("0.9999999", "0.99999994", "0.5", "0.1", "0", "0.75"))
    return _extras(rng, config, probability=0.2)


def _fractions(rng: Rng) -> Config:
    """Fraction grammar and float32 rounding for each fraction; bounds opened so products show."""
    base = rng.choice(({P: None}, {P: None}, {F: None}, {TH: "1g", MAN: "1g"}, {F: None, TH: "1g"}))
    config: Config = {
        key: value or render_size(rng, _size(rng, GIB, 64 * GIB, rng.choice((1, KIB, MIB))))
        for key, value in base.items()
    }
    key = rng.choice((*FRACTION_KEYS, OLD_NF))
    config[key] = _fraction_value(rng)
    if rng.random() < 0.6:
        config[NMIN] = rng.choice(("0", "0b", "1b"))
        config[NMAX] = rng.choice(("1t", "8388607t", "9223372036854775807"))
    if rng.random() < 0.6:
        config[OMIN] = rng.choice(("0", "0m"))
        config[OMAX] = rng.choice(("1t", "100g", "8388607t"))
    if rng.random() < 0.3:
        config[rng.choice(FRACTION_KEYS)] = _fraction_value(rng)
    return _extras(rng, config, probability=0.15)


def _ranges(rng: Rng) -> Config:
    """Network and overhead min/max: min > max, min == max, around the derived value, deprecated keys."""
    config: Config = dict(rng.choice(({P: "4g"}, {P: "16g"}, {F: "3g"}, {TH: "1g", MAN: "1g"}, {F: "3g", TH: "1g"})))
    low, high = sorted((_plausible(rng, NMIN), _plausible(rng, NMAX)))
    if rng.random() < 0.3:
        low, high = high, low
    if rng.random() < 0.2:
        high = low
    min_key = rng.choice((NMIN, NMIN, OLD_NMIN))
    max_key = rng.choice((NMAX, NMAX, OLD_NMAX))
    if rng.random() < 0.8:
        config[min_key] = render_size(rng, low)
    if rng.random() < 0.8:
        config[max_key] = render_size(rng, high)
    if rng.random() < 0.4:
        low, high = sorted((_plausible(rng, OMIN), _plausible(rng, OMAX)))
        if rng.random() < 0.3:
            low, high = high, low
        config[OMIN], config[OMAX] = render_size(rng, low), render_size(rng, high)
    if rng.random() < 0.3:
        config[P] = render_size(rng, _size(rng, GIB, 32 * GIB, MIB))
    return _extras(rng, config, probability=0.15)


def _resources(rng: Rng) -> Config:
    config: Config = dict(rng.choice(({P: "4g"}, {P: "8g"}, {F: "2g"}, {TH: "1g", MAN: "1g"})))
    for key, pool in ((SLOTS, SLOT_VALUES), (CPU, CPU_VALUES), (K8S_CPU, CPU_VALUES), (K8S_CPU_OLD, CPU_VALUES)):
        if rng.random() < 0.45:
            config[key] = rng.choice(pool)
    if rng.random() < 0.5:
        _external_resources(rng, config)
    return config


def _legacy(rng: Rng) -> Config:
    """Keys Flink 1.x still reads (legacy heap, network buffers) and deprecated fallback keys (both)."""
    config: Config = {}
    roll = rng.random()
    if roll < 0.35:
        config[LEGACY] = (
            render_size(rng, _plausible(rng, LEGACY)) if rng.random() < 0.75 else _memory_value(rng, LEGACY)
        )
    elif roll < 0.55:
        config[LEGACY_MB] = str(rng.randint(0, 65536)) if rng.random() < 0.6 else rng.choice(HEAP_MB_VALUES)
    if rng.random() < 0.45:
        config[BUFFERS] = rng.choice(("1024", "2048", "4096", "8192", "16384", "0", "-1", "abc", "10"))
        if rng.random() < 0.5:
            config[SEGMENT] = rng.choice(SEGMENT_VALUES)
    if rng.random() < 0.3:
        config[rng.choice(DEPRECATED_KEYS)] = _value(rng, rng.choice((OLD_MANAGED, OLD_NMIN, OLD_NMAX, OLD_NF)))
    for key in (P, F, TH, MAN):
        if rng.random() < 0.2:
            config[key] = render_size(rng, _plausible(rng, key))
    if rng.random() < 0.15:
        config[rng.choice((NMIN, NF))] = rng.choice(("64m", "0.1", "128m"))
    if not config:
        config[LEGACY] = "1g"
    return _extras(rng, config, probability=0.2)


def _boundaries(rng: Rng) -> Config:
    """Exactly at, and a byte around, the thresholds of the checks."""
    delta = rng.choice((-2, -1, 0, 0, 1, 2))
    choice = rng.randrange(7)
    if choice == 0:  # no room for the task heap: 981m/982m (defaults), E05
        return {P: render_size(rng, rng.choice((981, 982, 600, 448, 449)) * MIB + delta)}
    if choice == 1:  # the overhead fraction reaching min or max, the network fraction reaching its min
        return {P: render_size(rng, rng.choice((2013265920, 10737418240, 10737418230, 1073741824)) + delta * 7)}
    if choice == 2:  # the network remainder at network.min / network.max
        net = rng.choice((64 * MIB, 256 * MIB, GIB))
        task_heap = 512 * MIB
        flink = 2 * 128 * MIB + task_heap + GIB + net + delta
        config = {F: str(flink), TH: str(task_heap), MAN: "1g"}
        config[rng.choice((NMIN, NMAX))] = str(net)
        return config
    if choice == 3:  # the overhead remainder at its bounds (P3)
        flink = _size(rng, GIB, 8 * GIB, MIB)
        bound = rng.choice((192 * MIB, GIB))
        return {F: str(flink), P: str(flink + 256 * MIB + bound + delta)}
    if choice == 4:  # metaspace + overhead == process (P1)
        meta, overhead = _size(rng, 0, GIB, MIB), _size(rng, 0, GIB, MIB)
        return {P: str(meta + overhead + max(0, delta)), META: str(meta), OMIN: str(overhead), OMAX: str(overhead)}
    if choice == 5:  # fine-grained exceeding total Flink by a byte (S1)
        task_heap, managed = _size(rng, 0, 4 * GIB, MIB), _size(rng, 0, 4 * GIB, MIB)
        return {TH: str(task_heap), MAN: str(managed), F: str(2 * 128 * MIB + task_heap + managed + delta)}
    # a task heap of exactly 0 and the minimum CPU step
    return {P: "4g", TH: "0", CPU: rng.choice(("0.00000001", "0.000000009", "1e-8"))}


def _chaos(rng: Rng) -> Config:
    keys = rng.sample(ALL_KEYS, rng.randint(1, 8))
    config = {key: _value(rng, key) for key in keys}
    return _extras(rng, config, probability=0.1)


FAMILIES: Final[tuple[tuple[str, Callable[[Rng], Config], int], ...]] = (
    ("realistic", _realistic, 16),
    ("paths", _paths, 16),
    ("spellings", _spellings, 9),
    ("bad", _bad_values, 8),
    ("huge", _huge, 7),
    ("fractions", _fractions, 10),
    ("ranges", _ranges, 9),
    ("resources", _resources, 8),
    ("legacy", _legacy, 9),
    ("boundaries", _boundaries, 7),
    ("chaos", _chaos, 8),
)


def version_spellings(version: str) -> tuple[str, ...]:
    """The ways a record may name `version`'s line: `1.20`, `1.20.3`, `v1_20`."""
    major, minor = version_line(version).split(".")
    return (f"{major}.{minor}", version, f"v{major}_{minor}")


def generate(version: str, n: int, seed: int) -> list[Record]:
    """`n` random TaskManager records for Flink `version`, the same for the same (version, n, seed)."""
    rng = random.Random(f"flinkmem-tm:{version}:{seed}")
    weights = [weight for _, _, weight in FAMILIES]
    spellings = version_spellings(version)
    records: list[Record] = []
    order = list(range(len(FAMILIES))) + rng.choices(range(len(FAMILIES)), weights=weights, k=max(0, n))
    for index, family in enumerate(order[:n]):
        name, builder, _ = FAMILIES[family]
        record: Record = {"id": f"tm/{version}/{seed}/{index:06d}/{name}", "role": "taskmanager"}
        record["config"] = builder(rng)
        roll = rng.random()
        if roll < 0.45:
            record["mode"] = "native"
        elif roll < 0.9:
            record["mode"] = "standalone"
        if rng.random() < 0.3:
            record["flinkVersion"] = rng.choice(spellings)
        records.append(record)
    return records
