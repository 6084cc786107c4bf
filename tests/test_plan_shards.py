"""Planning: the shard partition of a plan (`--shard I/N`)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from harness.errors import UsageError
from harness.plan import Shard, parse_shard, plan_cells, shard_cells, shard_of
from harness.records import CellKey
from harness.suites import load_suite
from tests.conftest import ROOT


def test_parse_shard() -> None:
    assert parse_shard("2/4") == Shard(2, 4)
    assert parse_shard("1/1") == Shard(1, 1)
    assert str(Shard(3, 7)) == "3/7"
    for bad in ("0/3", "4/3", "3", "a/b", "1/0", "-1/2", "1/2/3", ""):
        with pytest.raises(UsageError, match="I/N with 1 <= I <= N"):
            parse_shard(bad)


def test_shard_of_is_sha256_of_the_cell_key() -> None:
    # Independent computation: the documented rule, sha256 of "probe|context|temperature".
    for key, count in [(CellKey("di-001", "bare", 0.7), 4), (CellKey("x", "rag", 1.0), 3),
                       (CellKey("p", "c", 0.0), 1)]:
        digest = hashlib.sha256(f"{key.probe_id}|{key.context}|{key.temperature:g}"
                                .encode()).digest()
        assert shard_of(key, count) == int.from_bytes(digest[:8], "big") % count + 1


def test_shards_partition_the_plan() -> None:
    cells = plan_cells(load_suite(ROOT / "suites" / "demo.yaml"))
    for count in (1, 2, 3, 8):
        parts = [shard_cells(cells, Shard(i, count)) for i in range(1, count + 1)]
        keys = [c.key for part in parts for c in part]
        assert sorted(keys, key=str) == sorted((c.key for c in cells), key=str)
        assert len(set(keys)) == len(keys)  # no cell in two shards
        # Plan order is kept inside a shard.
        order = {c.key: n for n, c in enumerate(cells)}
        assert all([order[c.key] for c in p] == sorted(order[c.key] for c in p) for p in parts)
    # Balanced enough to be useful: 288 cells over 3 shards.
    sizes = [len(shard_cells(cells, Shard(i, 3))) for i in (1, 2, 3)]
    assert min(sizes) > len(cells) / 3 * 0.7
    assert shard_cells(cells, None) == cells


def test_shard_assignment_does_not_depend_on_the_process_hash_seed() -> None:
    code = ("from harness.plan import shard_of; from harness.records import CellKey; "
            "print([shard_of(CellKey(f'p{i}', 'bare', 0.7), 5) for i in range(40)])")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2", "random")}
    assert len(outs) == 1
