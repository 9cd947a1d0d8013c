"""Why an older line differs: every mismatch of `compare`, run again with one line rule neutralised.

    python -m tests.lines.explain [--versions V ...] [--in DIR]

Each `Rule` states one behaviour of older lines as data (which lines, which records) and how to take
it out of a comparison: by giving old Flink an input on which the old behaviour cannot show
(`flink_input`, e.g. an explicit `taskmanager.memory.network.max`), by giving flinkmem an input on
which the current behaviour reproduces the old one (`ours_input`, e.g. without a key the old line does
not know), or by normalising both answers (`normalize`, e.g. the quotes around extended resources).
For each version the mismatches in `<version>.mismatches.jsonl` are run again through the harness and
`flinkmem resolve --batch`, once per rule alone and once with every applicable rule; a mismatch that
disappears is explained. What no rule explains is printed with examples: a difference to study.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Context, Decimal
from pathlib import Path
from typing import Any, Final

from tests.differential import flinkref
from tests.differential.test_against_flink import run_flinkmem
from tests.differential.tmvectors import BUFFERS as LEGACY_BUFFERS
from tests.differential.tmvectors import K8S_CPU, LEGACY, LEGACY_MB, NF, NMAX, NMIN, OLD_NF, OLD_NMAX, OLD_NMIN, P
from tests.differential.vectors import LIMIT_FACTOR, Record, version_line
from tests.lines.compare import differences, mode, role
from tests.lines.probes import FINE_GRAINED, K8S_CPU_OLD
from tests.support import flinkdist

__all__ = ["RULES", "Rule", "explain", "main"]

Answer = dict[str, Any]
Entry = dict[str, Any]  # one line of <version>.mismatches.jsonl: record, fields, flink, flinkmem
LONG_MAX: Final = str((1 << 63) - 1)
DECLARATIVE: Final = "cluster.declarative-resource-management.enabled"
EXT: Final = "external-resources"


def line(version: str) -> tuple[int, int]:
    major, minor = version_line(version).split(".")
    return int(major), int(minor)


@dataclass(frozen=True)
class Rule:
    """One behaviour of older lines: where it holds, and how to take it out of a comparison."""

    name: str
    rule: str
    first: str  # the first line that holds it
    last: str  # the last line that holds it (the next one behaves as flinkmem does)
    applies: Callable[[Entry], bool]
    flink_input: Callable[[Entry], Record] | None = None
    ours_input: Callable[[Entry], Record] | None = None
    normalize: Callable[[Answer], Answer] | None = None

    def holds_on(self, version: str) -> bool:
        return line(self.first) <= line(version) <= line(self.last)


def _with(record: Record, **config: str | None) -> Record:
    changed = {key: value for key, value in record["config"].items() if key not in config}
    changed.update({key: value for key, value in config.items() if value is not None})
    return {**record, "config": changed}


def _config(entry: Entry) -> dict[str, str]:
    config: dict[str, str] = entry["record"]["config"]
    return config


def _tm(entry: Entry) -> bool:
    return role(entry["record"]) == "taskmanager"


def _tm_native(entry: Entry) -> bool:
    return _tm(entry) and mode(entry["record"]) == "native"


# --- network.max ---------------------------------------------------------------------------------


def _network_default_applies(entry: Entry) -> bool:
    config = _config(entry)
    if not _tm(entry) or NMAX in config or OLD_NMAX in config:
        return False
    # With the legacy buffer count in charge (1.x) the network range is not read at all.
    return LEGACY_BUFFERS not in config or any(key in config for key in (NMIN, NF, OLD_NMIN, OLD_NF))


def _explicit_network_max(entry: Entry) -> Record:
    record: Record = entry["record"]
    return _with(record, **{NMAX: LONG_MAX})


# --- the native resource manager keeps the total sizes -------------------------------------------


def _fine_grained_on(entry: Entry) -> Record:
    record: Record = entry["record"]
    return _with(record, **{FINE_GRAINED: "true", DECLARATIVE: "true"})


def _without_switches(entry: Entry) -> Record:
    record: Record = entry["record"]
    return _with(record, **{FINE_GRAINED: None, DECLARATIVE: None})


def _as_client(entry: Entry) -> Record:
    """1.12 has no switch: its pod is the client's spec (the legacy heap read as the process size),
    with the resource manager's CPU; flinkmem's standalone derivation of that configuration."""
    record: Record = entry["record"]
    config = dict(record["config"])
    if P not in config and (LEGACY in config or LEGACY_MB in config):
        if LEGACY in config:
            config[P] = config[LEGACY]
        else:
            if not re.fullmatch(r"[+-]?\d+", config[LEGACY_MB]):  # Integer.parseInt: no blanks, Unicode digits
                return record  # unreadable: both fail on it natively
            config[P] = f"{int(config[LEGACY_MB])}m"
    config.pop(LEGACY, None)
    config.pop(LEGACY_MB, None)
    fallback = config.get(K8S_CPU_OLD)  # the only Kubernetes CPU key 1.12 knows, always read
    if fallback is not None:
        value = _java_double(fallback)
        if value is None:
            return record  # unreadable: the native resource manager fails on it, so does flinkmem
        if value > 0 and "taskmanager.cpu.cores" not in config:
            config["taskmanager.cpu.cores"] = fallback
    return {**record, "mode": "standalone", "config": config}


_JAVA_BLANKS: Final = "".join(map(chr, range(0x21)))  # what String.trim removes
_JAVA_DECIMAL: Final = re.compile(r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?")
_JAVA_HEX: Final = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+[fFdD]?")


def _java_double(text: str) -> float | None:
    """Double.parseDouble of `text` (trimmed, type suffix, NaN/Infinity, hexadecimal), or None."""
    trimmed = text.strip(_JAVA_BLANKS)
    if _JAVA_HEX.fullmatch(trimmed):
        return float.fromhex(trimmed.rstrip("fFdD"))
    if _JAVA_DECIMAL.fullmatch(trimmed):
        return float(trimmed.rstrip("fFdD").replace("Infinity", "inf").replace("NaN", "nan"))
    return None


# --- CPU key, CPU scale, extended resources, limit factor -----------------------------------------

_CPU_KEYS: Final = ("taskmanager.cpu.cores", K8S_CPU, "kubernetes.taskmanager.cpu")
_WIDE: Final = Context(prec=400)
_PLAIN_NUMBER: Final = re.compile(r"[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?")


def _cpu_beyond_eight_decimals(entry: Entry) -> bool:
    config = _config(entry)
    return _tm(entry) and any(_truncated(config[key]) != config[key] for key in _CPU_KEYS if key in config)


def _truncated(text: str) -> str:
    """A plain decimal CPU value with more than 8 decimals cut to 8, as Resource does from 1.14
    (RoundingMode.DOWN on the double's shortest text); any other text unchanged."""
    if not _PLAIN_NUMBER.fullmatch(text.strip()) or not math.isfinite(float(text)):
        return text
    exact = Decimal(repr(float(text)))
    if exact == exact.quantize(Decimal("1e-8"), rounding=ROUND_DOWN, context=_WIDE):
        return text
    return format(exact.quantize(Decimal("1e-8"), rounding=ROUND_DOWN, context=_WIDE).normalize(_WIDE), "f")


def _cpu_cut_to_eight_decimals(entry: Entry) -> Record:
    record: Record = entry["record"]
    config = record["config"]
    return _with(record, **{key: _truncated(config[key]) for key in _CPU_KEYS if key in config})


def _without(*keys: str) -> Callable[[Entry], Record]:
    def rewrite(entry: Entry) -> Record:
        record: Record = entry["record"]
        return _with(record, **dict.fromkeys(keys))

    return rewrite


def _yaml_list_value(entry: Entry) -> bool:
    value = _config(entry).get(EXT)
    return _tm(entry) and value is not None and value.strip()[:1] in ("[", "-")


def _as_one_legacy_item(entry: Entry) -> Record:
    """The value as the single `;`-list item old lines make of it, quoted so that no YAML reading
    can make a list of it (the item names no resource with an amount, so it is dropped)."""
    record: Record = entry["record"]
    value = str(record["config"][EXT]).strip()
    return _with(record, **{EXT: "'" + value.replace("'", "''") + "'"})


def _without_unread_1_12_keys(entry: Entry) -> Record:
    """What 1.12 never reads for a TaskManager spec: the external-resource keys, and standalone the
    slot count when taskmanager.cpu.cores is set (slots only stand in for the CPU there)."""
    record: Record = entry["record"]
    config = {key: value for key, value in record["config"].items() if not key.startswith("external-resource")}
    if mode(record) == "standalone" and "taskmanager.cpu.cores" in config:
        config.pop("taskmanager.numberOfTaskSlots", None)
    return {**record, "config": config}


def _map_strings(answer: Answer, change: Callable[[str], str]) -> Answer:
    answer = dict(answer)
    if isinstance(answer.get("dynamicConfigs"), str):
        answer["dynamicConfigs"] = change(answer["dynamicConfigs"])
    pod = answer.get("k8s")
    if isinstance(pod, dict) and isinstance(pod.get("args"), str):
        answer["k8s"] = {**pod, "args": change(pod["args"])}
    return answer


_QUOTED_RESOURCES: Final = re.compile(r'(-D external-resources=)"([^"]*)"')
_DYNAMIC: Final = re.compile(r"-D (\S+?)=(\S*)")


def _unquoted_resources(answer: Answer) -> Answer:
    return _map_strings(answer, lambda text: _QUOTED_RESOURCES.sub(r"\1\2", text))


def _without_slots_and_resources(answer: Answer) -> Answer:
    """1.12's spec has neither slots nor extended resources, so neither is among its `-D` pairs."""

    def change(text: str) -> str:
        pairs = sorted(
            f"-D {key}={value}"
            for key, value in _DYNAMIC.findall(text)
            if key != "taskmanager.numberOfTaskSlots" and not key.startswith("external-resource")
        )
        return " ".join(pairs)

    answer = _map_strings(answer, change)
    pod = answer.get("k8s")
    if isinstance(pod, dict) and isinstance(answer.get("dynamicConfigs"), str):
        # The pod's arguments hold the pairs among other words: keep only the pairs, as the string.
        answer["k8s"] = {**pod, "args": " " + str(answer["dynamicConfigs"])}
    return answer


RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "cpu-not-cut-to-8-decimals",
        "the CPU (taskmanager.cpu.cores, the Kubernetes CPU, the slot count) is kept at full double precision; "
        "from 1.14 Resource cuts it to 8 decimals (RoundingMode.DOWN) after the positivity check",
        "1.12",
        "1.13",
        _cpu_beyond_eight_decimals,
        flink_input=_cpu_cut_to_eight_decimals,
        ours_input=_cpu_cut_to_eight_decimals,
    ),
    Rule(
        "network-max-1g",
        "taskmanager.memory.network.max defaults to 1g; from 1.17 to MemorySize.MAX_VALUE",
        "1.12",
        "1.16",
        _network_default_applies,
        flink_input=_explicit_network_max,
        ours_input=_explicit_network_max,
    ),
    Rule(
        "resource-manager-keeps-totals",
        "native pods: the resource manager removes taskmanager.memory.process.size/flink.size only with "
        "fine-grained resource management (cluster.fine-grained-resource-management.enabled, default false "
        "up to 1.17, true in 1.18, always from 1.19)",
        "1.13",
        "1.18",
        _tm_native,
        flink_input=_fine_grained_on,
        ours_input=_without_switches,
    ),
    Rule(
        "resource-manager-keeps-totals-1.12",
        "native pods in 1.12: the resource manager never removes the total sizes (its pod is the client's spec)",
        "1.12",
        "1.12",
        _tm_native,
        ours_input=_as_client,
    ),
    Rule(
        "k8s-cpu-key",
        "kubernetes.taskmanager.cpu.amount is unknown (only kubernetes.taskmanager.cpu); from 1.17 it is the "
        "key and kubernetes.taskmanager.cpu its deprecated fallback",
        "1.12",
        "1.16",
        lambda entry: _tm_native(entry) and K8S_CPU in _config(entry),
        ours_input=_without(K8S_CPU),
    ),
    Rule(
        "external-resources-unquoted",
        'the external-resources dynamic config is written without quotes (gpu;fpga); from 1.15 "gpu;fpga"',
        "1.13",
        "1.14",
        lambda entry: _tm(entry) and EXT in _config(entry),
        normalize=_unquoted_resources,
    ),
    Rule(
        "external-resources-legacy-list",
        "external-resources is read only as a ;-separated list; from 1.19 a YAML flow/block list first",
        "1.12",
        "1.18",
        _yaml_list_value,
        ours_input=_as_one_legacy_item,
    ),
    Rule(
        "spec-without-slots-and-resources",
        "1.12: the TaskManager spec has no slots nor extended resources: its -D pairs lack "
        "taskmanager.numberOfTaskSlots and external-resource(s); external-resource amounts are never read, and "
        "standalone the slot count only when taskmanager.cpu.cores is absent (as the CPU)",
        "1.12",
        "1.12",
        _tm,
        ours_input=_without_unread_1_12_keys,
        normalize=_without_slots_and_resources,
    ),
    Rule(
        "jobmanager-limit-factor-unknown",
        "kubernetes.jobmanager.memory.limit-factor does not exist: the pod's memory limit is its request",
        "1.12",
        "1.14",
        lambda entry: not _tm(entry) and LIMIT_FACTOR in _config(entry),
        ours_input=_without(LIMIT_FACTOR),
    ),
)


def _rerun(version: str, entries: Sequence[Entry], rules: Callable[[Entry], Sequence[Rule]]) -> list[bool]:
    """For each entry, whether Flink and flinkmem agree once `rules(entry)` are neutralised."""
    flink_records, our_records = [], []
    for entry in entries:
        flink_record, our_record = entry["record"], entry["record"]
        for rule in rules(entry):
            if rule.flink_input is not None:
                flink_record = rule.flink_input({**entry, "record": flink_record})
            if rule.ours_input is not None:
                our_record = rule.ours_input({**entry, "record": our_record})
        flink_records.append(flink_record)
        our_records.append(our_record)
    flink = flinkref.run_reference(version, flink_records, verify=True)
    ours = run_flinkmem(version_line(version), our_records)
    agree = []
    for entry, record, our_record, theirs, mine in zip(entries, flink_records, our_records, flink, ours, strict=True):
        for rule in rules(entry):
            if rule.normalize is not None:
                theirs, mine = rule.normalize(theirs), rule.normalize(mine)
        agree.append(not differences(record, theirs, mine, version_line(version), our_record))
    return agree


def explain(version: str, entries: Sequence[Entry], shown: int = 6) -> dict[str, Any]:
    """Per rule: how many mismatches it applies to and explains alone; all rules together; the rest."""
    rules = [rule for rule in RULES if rule.holds_on(version)]
    report: dict[str, Any] = {"version": version, "mismatches": len(entries), "rules": {}}
    for rule in rules:
        subset = [entry for entry in entries if rule.applies(entry)]
        explained = sum(_rerun(version, subset, lambda _entry, rule=rule: [rule])) if subset else 0  # type: ignore[misc]
        report["rules"][rule.name] = {"rule": rule.rule, "applies": len(subset), "explainedAlone": explained}

    def applicable(entry: Entry) -> list[Rule]:
        return [rule for rule in rules if rule.applies(entry)]

    together = _rerun(version, entries, applicable) if entries else []
    rest = [entry for entry, agrees in zip(entries, together, strict=True) if not agrees]
    report["explainedTogether"] = len(entries) - len(rest)
    report["unexplained"] = len(rest)
    report["unexplainedByGroup"] = dict(Counter(f"{role(e['record'])}/{mode(e['record'])}" for e in rest))
    rest.sort(key=lambda entry: role(entry["record"]) != "taskmanager")
    report["examples"] = [
        {
            "record": entry["record"],
            "fields": entry["fields"],
            "flink": {k: entry["flink"].get(k) for k in ("valid", "error", "totalProcessMemory", "dynamicConfigs")},
            "flinkmem": {k: entry["flinkmem"].get(k) for k in ("valid", "error", "totalProcessMemory")},
        }
        for entry in rest[:shown]
    ]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lines.explain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", nargs="+", default=list(flinkdist.LINE_VERSIONS), metavar="V")
    parser.add_argument("--in", dest="source", type=Path, default=None, help="default: $FLINKMEM_CACHE/lines")
    args = parser.parse_args(argv)
    source: Path = args.source or flinkdist.cache_root() / "lines"
    reports = []
    for version in args.versions:
        path = source / f"{version}.mismatches.jsonl"
        entries = [json.loads(text) for text in path.read_text().splitlines()] if path.is_file() else []
        report = explain(version, entries)
        print(json.dumps(report), flush=True)
        reports.append(report)
    (source / "explained.json").write_text(json.dumps(reports, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
