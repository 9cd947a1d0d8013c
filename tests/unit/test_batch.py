"""`flinkmem resolve --batch`: JSON Lines in, exactly one JSON line out per input line, in order,
whatever the input line holds."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkmem.cli import batch
from flinkmem.cli.batch import auto_jobs, resolve_line, resolve_lines, resolve_record, run_batch, usable_cpus
from flinkmem.engine import FlinkVersion

V2 = FlinkVersion(2, 3)
P = "jobmanager.memory.process.size"
C01_ARGS = "-Xmx1073741824 -Xms1073741824 -XX:MaxMetaspaceSize=268435456"
C01_DYNAMIC = (
    "-D jobmanager.memory.off-heap.size=134217728b -D jobmanager.memory.jvm-overhead.min=201326592b "
    "-D jobmanager.memory.jvm-metaspace.size=268435456b -D jobmanager.memory.heap.size=1073741824b "
    "-D jobmanager.memory.jvm-overhead.max=201326592b"
)
RESULT_KEYS = {
    "id",
    "valid",
    "totalProcessMemory",
    "totalFlinkMemory",
    "jvmHeap",
    "offHeap",
    "jvmMetaspace",
    "jvmOverhead",
    "jvmDirectMemory",
    "jvmArgs",
    "dynamicConfigs",
    "warnings",
    "error",
    "rule",
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(line: bytes) -> Any:
    """Parses one output line as standard JSON (no NaN/Infinity extensions)."""
    return json.loads(line, parse_constant=_reject_constant)


def run(data: bytes, jobs: int = 1) -> list[Any]:
    sink = io.BytesIO()
    count = run_batch(io.BytesIO(data), sink, V2, flush_each=False, jobs=jobs)
    text = sink.getvalue()
    assert text.endswith(b"\n") or text == b""
    lines = text.split(b"\n")[:-1]
    assert count == len(lines)
    return [strict_json(line) for line in lines]


def test_valid_record() -> None:
    out = strict_json(resolve_line(json.dumps({"id": "a", "config": {P: "1600m"}}), V2))
    assert set(out) == RESULT_KEYS
    assert out["id"] == "a"
    assert out["valid"] is True
    assert out["totalProcessMemory"] == 1677721600
    assert out["totalFlinkMemory"] == 1207959552
    assert out["jvmHeap"] == 1073741824
    assert out["offHeap"] == 134217728
    assert out["jvmMetaspace"] == 268435456
    assert out["jvmOverhead"] == 201326592
    assert out["jvmDirectMemory"] is None
    assert out["jvmArgs"] == C01_ARGS
    assert out["dynamicConfigs"] == C01_DYNAMIC
    assert out["warnings"] == []
    assert out["error"] is None and out["rule"] is None


def test_direct_memory_and_warnings() -> None:
    record = {
        "id": 1,
        "config": {"jobmanager.memory.heap.size": "50m", "jobmanager.memory.enable-jvm-direct-memory-limit": "true"},
    }
    out = resolve_record(record, V2)
    assert out["jvmDirectMemory"] == 134217728
    assert out["jvmHeap"] == 50 << 20
    assert len(out["warnings"]) == 1


def test_version_and_mode_per_record() -> None:
    legacy = {"jobmanager.heap.size": "1g"}
    standalone = resolve_record({"id": 1, "config": legacy, "flinkVersion": "1.20", "mode": "standalone"}, V2)
    native = resolve_record({"id": 2, "config": legacy, "flinkVersion": "v1_20"}, V2)
    latest = resolve_record({"id": 3, "config": legacy}, V2)
    assert standalone["jvmHeap"] == 1 << 30  # heap interpretation
    assert native["totalProcessMemory"] == 1 << 30  # process interpretation
    assert latest["valid"] is False and latest["rule"] == "no-sizing-option"  # 2.x ignores the key


def test_default_version_applies_when_absent() -> None:
    record = {"id": 1, "config": {"jobmanager.heap.size": "1g"}, "mode": "standalone"}
    assert resolve_record(record, FlinkVersion(1, 20))["jvmHeap"] == 1 << 30


def test_invalid_configuration() -> None:
    out = strict_json(resolve_line(json.dumps({"id": 7, "config": {P: "100m"}}), V2))
    assert set(out) == RESULT_KEYS
    assert out["id"] == 7
    assert out["valid"] is False
    assert out["rule"] == "metaspace-and-overhead-exceed-process"
    assert isinstance(out["error"], str) and out["error"]
    for key in RESULT_KEYS - {"id", "valid", "warnings", "error", "rule"}:
        assert out[key] is None
    assert out["warnings"] == []


@pytest.mark.parametrize(
    ("line", "expected_id"),
    [
        ("not json", None),
        ("{", None),
        ("[1, 2]", None),
        ('"text"', None),
        ("null", None),
        ('{"id": 3}', 3),  # no config
        ('{"id": 4, "config": [1]}', 4),
        ('{"id": 5, "config": {"k": 1}}', 5),  # values must be strings
        ('{"id": 6, "config": {"k": null}}', 6),
        ('{"id": 7, "config": {}, "flinkVersion": 2}', 7),
        ('{"id": 8, "config": {}, "flinkVersion": "0.9"}', 8),
        ('{"id": 9, "config": {}, "mode": "hybrid"}', 9),
        ('{"id": 10, "config": {}, "mode": 1}', 10),
        ("[" * 100000, None),  # nested too deep for the parser
    ],
)
def test_malformed_lines(line: str, expected_id: Any) -> None:
    out = strict_json(resolve_line(line, V2))
    assert out["id"] == expected_id
    assert out["valid"] is False
    assert out["inputError"] is True
    assert isinstance(out["error"], str) and out["error"]


@pytest.mark.parametrize(
    "record_id",
    ["x", "", 0, -12, 12345678901234567890123, 1.5, 1e300, True, False, None, [1, "a"], {"k": {"n": [None]}}],
)
def test_ids_of_any_json_type_are_echoed(record_id: Any) -> None:
    line = json.dumps({"id": record_id, "config": {P: "1600m"}})
    assert strict_json(resolve_line(line, V2))["id"] == record_id
    bad = json.dumps({"id": record_id, "config": "nope"})
    assert strict_json(resolve_line(bad, V2))["id"] == record_id


def test_missing_id_is_null() -> None:
    assert strict_json(resolve_line(json.dumps({"config": {P: "1600m"}}), V2))["id"] is None


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_out_of_range_number_id_still_gives_a_json_line(number: str) -> None:
    # 1e400 is valid JSON; Python reads it as infinity, which json.dumps would write as `Infinity`,
    # a token no JSON parser accepts. The output line must stay standard JSON.
    line = f'{{"id": {number}, "config": {{"{P}": "1600m"}}}}'
    strict_json(resolve_line(line, V2))


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_give_a_json_line(token: str) -> None:
    # Not JSON at all (Python's json module merely tolerates these tokens); the answer must be JSON.
    line = f'{{"id": {token}, "config": {{"{P}": "1600m"}}}}'
    out = strict_json(resolve_line(line, V2))
    assert out["valid"] is False
    assert out["inputError"] is True


def test_one_output_per_input_line_in_order() -> None:
    lines = [
        json.dumps({"id": 1, "config": {P: "1600m"}}).encode(),
        b"",  # blank line
        b"   ",
        b"\xff\xfe not utf-8",
        json.dumps({"id": 2, "config": {P: "100m"}}).encode(),
        b"garbage",
        json.dumps({"id": 3, "config": {P: "2g"}}).encode() + b"\r",  # CRLF line end
        json.dumps({"id": "\u00e9\u4e2d", "config": {P: "1g"}}).encode(),  # last line without a newline
    ]
    out = run(b"\n".join(lines))
    assert len(out) == len(lines)
    assert [o["id"] for o in out] == [1, None, None, None, 2, None, 3, "\u00e9\u4e2d"]
    assert [o["valid"] for o in out] == [True, False, False, False, False, False, True, True]
    assert [o.get("inputError", False) for o in out] == [False, True, True, True, False, True, False, False]
    assert out[0]["jvmArgs"] == C01_ARGS
    assert out[6]["jvmHeap"] == 1530082096
    assert out[7]["jvmHeap"] == 469762048


def test_empty_input() -> None:
    assert run(b"") == []


def test_trailing_newline_does_not_add_a_line() -> None:
    out = run(json.dumps({"id": 1, "config": {P: "1600m"}}).encode() + b"\n")
    assert len(out) == 1


def test_resolve_lines_is_lazy_and_ordered() -> None:
    source = iter([b'{"id": 1, "config": {}}\n', b'{"id": 2, "config": {}}\n'])
    results = resolve_lines(source, V2)
    assert strict_json(next(results))["id"] == 1
    assert strict_json(next(results))["id"] == 2
    with pytest.raises(StopIteration):
        next(results)


def test_flush_each_line() -> None:
    class CountingSink(io.BytesIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1
            super().flush()

    sink = CountingSink()
    run_batch(io.BytesIO(b"{}\n{}\n{}\n"), sink, V2, flush_each=True)
    assert sink.flushes >= 3
    assert len(sink.getvalue().splitlines()) == 3


MIXED_LINES = [
    json.dumps({"id": 1, "config": {P: "1600m"}}).encode(),
    b"",
    b"\xff\xfe not utf-8",
    json.dumps({"id": 2, "config": {P: "100m"}}).encode(),
    b'{"id": 1e400, "config": {}}',
    b'{"id": "\\ud800", "config": {}}',
    b"[" * 5000,
    json.dumps(
        {"id": 3, "config": {"jobmanager.heap.size": "2g"}, "flinkVersion": "1.20", "mode": "standalone"}
    ).encode()
    + b"\r",
    b'{"id": 4,\r"config": {"jobmanager.memory.heap.size": "1g"}}',
]


@pytest.mark.parametrize("trailing_newline", [True, False])
def test_worker_processes_answer_exactly_like_one_process(
    monkeypatch: pytest.MonkeyPatch, trailing_newline: bool
) -> None:
    # Small chunks, so that many chunks travel through the workers and come back in order.
    monkeypatch.setattr(batch, "CHUNK_BYTES", 64)
    lines = [
        line
        for n in range(40)
        for line in [*MIXED_LINES, json.dumps({"id": f"n{n}", "config": {P: f"{n + 1}g"}}).encode()]
    ]
    data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
    single, parallel = run(data, jobs=1), run(data, jobs=2)
    assert len(single) == len(lines)
    assert parallel == single
    assert [o["id"] for o in parallel[9::10]] == [f"n{n}" for n in range(40)]


def test_lines_refused_by_the_fast_decoder_still_get_their_answers() -> None:
    out = run(b"\n".join(MIXED_LINES))
    assert [o["valid"] for o in out] == [True, False, False, False, False, False, False, True, True]
    assert [o.get("inputError", False) for o in out] == [False, True, True, False, True, False, True, False, False]
    assert "UTF-8" in out[2]["error"]
    assert "outside the range of a double" in out[4]["error"]
    assert out[5]["id"] == "\ud800" and out[5]["rule"] == "no-sizing-option"
    assert out[7]["jvmHeap"] == 1 << 31


def test_auto_jobs_parallelises_only_large_regular_files(tmp_path: Path) -> None:
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small.write_bytes(b"{}\n")
    large.write_bytes(b"{}\n" * (batch.PARALLEL_MIN_BYTES // 3 + 1))
    with small.open("rb") as handle:
        assert auto_jobs(handle) == 1
    with large.open("rb") as handle:
        assert auto_jobs(handle) == min(usable_cpus(), large.stat().st_size // batch.CHUNK_BYTES)
    assert auto_jobs(io.BytesIO(large.read_bytes())) == 1
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(read_end, "rb") as pipe:
            assert auto_jobs(pipe) == 1
    finally:
        os.close(write_end)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_CONFIG_VALUES = st.sampled_from(["1600m", "100m", "2g", " 1 GB ", "0.25", "true", "", "1.5g", "99999999999999999999t"])
_RECORDS = st.fixed_dictionaries(
    {
        "id": _JSON_VALUES,
        "config": st.dictionaries(
            st.sampled_from([P, "jobmanager.memory.heap.size", "jobmanager.memory.jvm-overhead.fraction", "x"]),
            _CONFIG_VALUES | _JSON_VALUES,
        ),
    },
    optional={"flinkVersion": st.sampled_from(["1.20", "v2_x", "0.9"]) | _JSON_VALUES, "mode": _JSON_VALUES},
)


@settings(max_examples=300, deadline=None)
@given(record=_RECORDS | _JSON_VALUES, ensure_ascii=st.booleans())
def test_fast_json_path_answers_as_the_standard_library_would(record: Any, ensure_ascii: bool) -> None:
    line = json.dumps(record, ensure_ascii=ensure_ascii).encode()
    assert strict_json(resolve_line(line, V2)) == strict_json(batch._resolve_line_by_stdlib(line, V2))


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),  # cgroup v2: 1.5 CPUs round up
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, None),  # v2 without a limit
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage"}, None),
        ({}, None),  # no cgroup files at all
    ],
)
def test_usable_cpus_honours_a_cgroup_quota(tmp_path: Path, files: dict[str, str], quota: int | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path) == (affinity if quota is None else min(affinity, quota))


# ---------------------------------------------------------------------------------------------
# TaskManager lines ("role": "taskmanager")

TM_P = "taskmanager.memory.process.size"
TM_RESULT_KEYS = [
    "id",
    "valid",
    "totalProcessMemory",
    "totalFlinkMemory",
    "frameworkHeap",
    "frameworkOffHeap",
    "taskHeap",
    "taskOffHeap",
    "networkMemory",
    "managedMemory",
    "jvmMetaspace",
    "jvmOverhead",
    "jvmHeap",
    "jvmDirectMemory",
    "jvmArgs",
    "dynamicConfigs",
    "warnings",
    "error",
    "rule",
]


def test_taskmanager_line_fields_in_order() -> None:
    # V01 of the TaskManager notes: process.size 1728m, standalone.
    record = {"id": "tm", "role": "taskmanager", "mode": "standalone", "config": {TM_P: "1728m"}}
    answer = resolve_record(record, V2)
    assert list(answer) == TM_RESULT_KEYS
    assert answer["valid"] is True
    assert (answer["totalProcessMemory"], answer["totalFlinkMemory"]) == (1811939328, 1342177280)
    assert (answer["taskHeap"], answer["networkMemory"], answer["managedMemory"]) == (402653174, 134217730, 536870920)
    assert (answer["jvmHeap"], answer["jvmDirectMemory"]) == (536870902, 268435458)
    assert (
        answer["jvmArgs"]
        == "-Xmx536870902 -Xms536870902 -XX:MaxDirectMemorySize=268435458 -XX:MaxMetaspaceSize=268435456"
    )
    assert answer["dynamicConfigs"].startswith(
        "-D taskmanager.memory.network.min=134217730b -D taskmanager.cpu.cores=1.0 "
    )


def test_native_taskmanager_line_is_the_pod() -> None:
    # V29: the resource manager re-derives the overhead; the pod is one byte below 3 GiB.
    record = {"role": "taskmanager", "config": {TM_P: "3g", "taskmanager.memory.jvm-overhead.fraction": "0.25"}}
    answer = resolve_record(record, V2)
    assert (answer["totalProcessMemory"], answer["jvmOverhead"]) == (3221225471, 805306367)


def test_refused_taskmanager_line() -> None:
    answer = resolve_record({"id": 5, "role": "taskmanager", "config": {TM_P: "600m"}}, V2)
    assert list(answer) == TM_RESULT_KEYS
    assert answer["valid"] is False and answer["rule"] == "no-room-for-task-heap"
    assert all(answer[key] is None for key in TM_RESULT_KEYS[2:16]) and answer["warnings"] == []
    assert "Fix:" in answer["error"]


@pytest.mark.parametrize("role", [None, "jobmanager", " JobManager "])
def test_jobmanager_role_keeps_the_jobmanager_answer(role: str | None) -> None:
    record: dict[str, Any] = {"id": 1, "config": {P: "1600m"}}
    plain = resolve_line(json.dumps(record).encode(), V2)
    record["role"] = role
    assert resolve_line(json.dumps(record).encode(), V2) == plain


@pytest.mark.parametrize("role", ["worker", "", 1, True, ["taskmanager"], {"role": "taskmanager"}])
def test_invalid_role_is_an_input_error_of_that_line(role: Any) -> None:
    answer = strict_json(resolve_line(json.dumps({"id": 9, "role": role, "config": {TM_P: "4g"}}).encode(), V2))
    assert answer == {
        "id": 9,
        "valid": False,
        "inputError": True,
        "error": '\'role\' must be "jobmanager" or "taskmanager"',
    }


def test_mixed_roles_in_one_file() -> None:
    lines = [
        json.dumps({"id": 1, "config": {P: "1600m"}}),
        json.dumps({"id": 2, "role": "taskmanager", "config": {TM_P: "4g"}}),
        json.dumps({"id": 3, "role": "bogus", "config": {}}),
    ]
    answers = run(("\n".join(lines) + "\n").encode())
    assert [a["id"] for a in answers] == [1, 2, 3]
    assert "offHeap" in answers[0] and "networkMemory" in answers[1] and answers[2]["inputError"] is True
