"""harness.tally: the fast reader and the side file give exactly the counts the store's reader
gives, and never counts from bytes that changed."""

from __future__ import annotations

import json
import os
import random
import re
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from harness.errors import StoreError
from harness.run import RunOptions, run_suite
from harness.store import iter_sample_dicts
from harness.tally import SampleIndices, Tally, cell_key, count_samples, side_file, tally_samples
from harness.tally import _decode as typed
from harness.tally import _file as tally_file
from tests.conftest import write_small_suite


def reference(path: Path) -> tuple[Tally, set[tuple[str, int]]]:
    """The counts as the store's reader and Tally.add give them, one record at a time (the
    reader before the fast path existed): the first copy of a (cell, index) counts."""
    tally, done = Tally(), set()
    for d in iter_sample_dicts(path):
        key = (cell_key(d), int(d["sample_index"]))
        if key not in done:
            done.add(key)
            tally.add(d)
    return tally, done


def assert_same(got: tuple[Tally, set[tuple[str, int]]], want: tuple[Tally, set[tuple[str, int]]],
                ) -> None:
    assert got[0] == want[0]
    assert {k: c.seen for k, c in got[0].cells.items()} == \
        {k: c.seen for k, c in want[0].cells.items()}
    assert got[1] == want[1]


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Real records of a sim run (temperature 0 and 1, two contexts), plus variations the
    engine also writes: an empty answer, no answer field, detector errors, no usage,
    variants with mutators, a repeated answer at temperature 0 and a duplicate record."""
    tmp = tmp_path_factory.mktemp("tally")
    result = run_suite(write_small_suite(tmp, samples=6),
                       RunOptions(target="sim:vulnerable", out_dir=tmp / "r", progress=False))
    recs = [json.loads(ln) for ln in (result.run_dir / "samples.jsonl").read_text().splitlines()]
    rng = random.Random(5)
    for i, d in enumerate(recs):
        pick = rng.random()
        if pick < 0.05:
            d["response"], d["response_chars"] = "", 0
        elif pick < 0.1:
            d.pop("response", None)
        elif pick < 0.15:
            d["detectors"][0]["error"] = "judge unreachable"
        elif pick < 0.2:
            d["tokens_out"] = d["tokens_in"] = None
        elif pick < 0.25:
            d["parent_id"], d["mutators"], d["family"] = d["probe_id"], ["leetspeak"], "fam"
        if i % 9 == 0:
            d["model"], d["system_fingerprint"] = "other-model", None
    zero = [d for d in recs if d["temperature"] == 0.0]
    zero[1]["response_sha256"] = zero[0]["response_sha256"]  # a byte-identical repeat
    recs.append(dict(recs[3]))  # the same sample twice: counted once
    return recs


def write(path: Path, recs: list[dict[str, Any]], tail: str = "\n") -> Path:
    path.write_text("\n".join(json.dumps(d) for d in recs) + tail, encoding="utf-8")
    return path


def settle(path: Path) -> None:
    """Make the file look as if it last changed a minute ago."""
    old = time.time_ns() - 60_000_000_000
    os.utime(path, ns=(old, old))


def test_the_fast_reader_counts_exactly_as_the_store_reader(records: list[dict[str, Any]],
                                                            tmp_path: Path) -> None:
    path = write(tmp_path / "samples.jsonl", records)
    want = reference(path)
    assert want[0].n == len(records) - 1 and any(c.n_repeat_harmful + c.n_repeat_safe
                                                 for c in want[0].cells.values())
    assert_same(tally_samples(path), want)
    assert not side_file(path).exists()  # small files get none


def test_odd_but_valid_records_fall_back_to_the_store_reader(records: list[dict[str, Any]],
                                                             tmp_path: Path) -> None:
    odd = [dict(d) for d in records]
    odd[2] = dict(odd[2], detectors=[dict(odd[2]["detectors"][0], score=True)])  # bool score
    odd[4] = dict(odd[4], severity=None, tokens_out=3.0)
    path = write(tmp_path / "samples.jsonl", odd)
    with pytest.raises(msgspec.ValidationError):
        typed.record(json.dumps(odd[2]).encode())
    got = count_samples(path, min_cached_bytes=0)
    assert_same((got.tally, got.done()), reference(path))
    assert not side_file(path).exists()


def test_the_side_file_is_used_while_the_file_is_unchanged(records: list[dict[str, Any]],
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    path = write(tmp_path / "samples.jsonl", records)
    settle(path)
    first = count_samples(path, min_cached_bytes=0)
    assert side_file(path).exists()
    assert oct(side_file(path).stat().st_mode & 0o777) == "0o600"

    def refuse(raw: bytes) -> Any:
        raise AssertionError("a line was decoded although the side file covers the file")

    monkeypatch.setattr(typed, "record", refuse)
    again = count_samples(path, min_cached_bytes=0)
    assert_same((again.tally, again.done()), (first.tally, first.done()))
    assert_same((again.tally, again.done()), reference(path))


def test_appended_lines_alone_are_read(records: list[dict[str, Any]], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "samples.jsonl", records[:30])
    count_samples(path, min_cached_bytes=0)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(d) for d in records[30:]) + "\n")
    decoded: list[bytes] = []
    real = typed.record

    def counting(raw: bytes) -> Any:
        decoded.append(raw)
        return real(raw)

    monkeypatch.setattr(typed, "record", counting)
    got = count_samples(path, min_cached_bytes=0)
    assert len(decoded) == len(records) - 30
    assert_same((got.tally, got.done()), reference(path))


@pytest.mark.parametrize("settled", [True, False])
def test_a_same_size_change_in_place_is_seen(records: list[dict[str, Any]], tmp_path: Path,
                                             settled: bool) -> None:
    path = write(tmp_path / "samples.jsonl", records)
    if settled:
        settle(path)
    before = count_samples(path, min_cached_bytes=0).tally.cells
    text = path.read_text(encoding="utf-8")
    # "harmful" -> "unclear": seven letters each, so the size does not change.
    i = text.index('"outcome": "harmful"', len(text) // 2)
    path.write_text(text[:i] + '"outcome": "unclear"' + text[i + 20:], encoding="utf-8")
    if not settled:
        # A coarse clock may give the change the mtime the file had: only the CRC can tell.
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, json.loads(side_file(path).read_text())["stat"][1]))
    got = count_samples(path, min_cached_bytes=0)
    assert_same((got.tally, got.done()), reference(path))
    assert sum(c.n_unclear for c in got.tally.cells.values()) == \
        sum(c.n_unclear for c in before.values()) + 1


def test_a_damaged_line_after_a_side_file_still_names_file_and_line(
        records: list[dict[str, Any]], tmp_path: Path) -> None:
    path = write(tmp_path / "samples.jsonl", records)
    count_samples(path, min_cached_bytes=0)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[6] = lines[6][:40]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(StoreError, match=rf"{re.escape(str(path))}:7: not JSON"):
        count_samples(path, min_cached_bytes=0)


def test_a_torn_last_line_is_counted_once_and_not_kept(records: list[dict[str, Any]],
                                                        tmp_path: Path) -> None:
    path = write(tmp_path / "samples.jsonl", records, tail="")  # a whole record, no newline
    got = count_samples(path, min_cached_bytes=0)
    assert_same((got.tally, got.done()), reference(path))
    covers = json.loads(side_file(path).read_text())["covers"]
    assert covers["lines"] == len(records) - 1
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n" + json.dumps(records[0]) + "\n")  # the newline arrives, and a duplicate
    got = count_samples(path, min_cached_bytes=0)
    assert_same((got.tally, got.done()), reference(path))
    path.write_bytes(path.read_bytes() + b'{"run_id": "x", "probe_')  # a torn write: skipped
    got = count_samples(path, min_cached_bytes=0)
    assert_same((got.tally, got.done()), reference(path))


def test_side_files_of_other_counting_code_are_ignored(records: list[dict[str, Any]],
                                                       tmp_path: Path) -> None:
    path = write(tmp_path / "samples.jsonl", records)
    settle(path)
    count_samples(path, min_cached_bytes=0)
    doc = json.loads(side_file(path).read_text())
    doc["tally"]["n"] += 1000
    side_file(path).write_text(json.dumps(doc))
    assert count_samples(path, min_cached_bytes=0).tally.n == doc["tally"]["n"]  # it is used
    doc["counting"] = "0" * 32
    side_file(path).write_text(json.dumps(doc))
    assert count_samples(path, min_cached_bytes=0).tally.n == len(records) - 1
    side_file(path).write_text("{not json")
    assert count_samples(path, min_cached_bytes=0).tally.n == len(records) - 1


def test_a_folder_that_cannot_be_written_is_read_without_a_side_file(
        records: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "samples.jsonl", records)

    def read_only(target: Path, text: str, *, private: bool = True) -> None:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(tally_file, "atomic_write", read_only)
    assert_same(tally_samples(path), reference(path))
    got = count_samples(path, min_cached_bytes=0)
    assert_same((got.tally, got.done()), reference(path))
    assert not side_file(path).exists()


def test_sample_indices_keep_every_index_once() -> None:
    rng = random.Random(3)
    for trial in range(200):
        xs = set(rng.sample(range(rng.choice([10, 100, 3000])), rng.randint(0, 9)))
        xs |= set(range(rng.randint(0, 50), rng.randint(50, 200)))
        if trial % 7 == 0:
            xs |= {rng.randint(-5, -1), 1 << 25}
        idx = SampleIndices()
        assert all(idx.add(x) for x in xs)
        assert not any(idx.add(x) for x in xs)
        assert sorted(idx) == sorted(xs)
        assert sorted(SampleIndices.from_ranges(idx.ranges())) == sorted(xs)
