"""`harness.merge`: shard runs of one plan merge into the run the unsharded plan makes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.errors import StoreError, UsageError
from harness.merge import MergeOptions, merge_runs
from harness.plan import Shard, plan_cells
from harness.run import RunOptions, resume_run, run_suite
from harness.settings import Overrides
from harness.store import MANIFEST, SAMPLES, iter_sample_dicts
from harness.suites import load_suite
from tests.conftest import ROOT

DEMO = ROOT / "suites" / "demo.yaml"
# Wall-clock fields, masked as tests/test_golden_summary.py does.
_CLOCK = re.compile(r'^(  "(?:started|finished)": )"[^"]*"', re.MULTILINE)


def _run(out: Path, run_id: str, shard: Shard | None = None, samples: int | None = None,
         seed: int | None = None, suite: Path = DEMO, target: str = "sim") -> Path:
    result = run_suite(suite, RunOptions(
        target=target, out_dir=out, run_id=run_id, progress=False, use_env=False, shard=shard,
        overrides=Overrides(samples=samples, seed=seed)))
    return result.run_dir


def _summary_text(run_dir: Path) -> str:
    return _CLOCK.sub(r'\1"<clock>"', (run_dir / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("suite", "target", "count"), [("demo", "sim", 3),
                                                         ("nightly", "sim:patched", 2)])
def test_merged_summary_equals_the_unsharded_run(tmp_path: Path, suite: str, target: str,
                                                 count: int) -> None:
    path = ROOT / "suites" / f"{suite}.yaml"
    whole = _run(tmp_path / "whole", "R", suite=path, target=target)
    shards = [_run(tmp_path / "shards", f"s{i}", Shard(i, count), suite=path, target=target)
              for i in range(1, count + 1)]
    # Each shard sampled only its part.
    parts = [json.loads((s / MANIFEST).read_text())["planned_samples"] for s in shards]
    whole_manifest = json.loads((whole / MANIFEST).read_text())
    assert sum(parts) == whole_manifest["planned_samples"] and all(parts)
    result = merge_runs(shards[::-1], MergeOptions(out_dir=tmp_path / "merged", run_id="R"))
    assert _summary_text(result.run_dir) == _summary_text(whole)
    assert result.outcome == json.loads((whole / "summary.json").read_text())["outcome"]
    merged = json.loads((result.run_dir / MANIFEST).read_text())
    assert "shard" not in merged and merged["status"] == "finished"
    assert [m["shard"]["index"] for m in merged["merged_from"]] == list(range(1, count + 1))
    assert merged["planned_samples"] == whole_manifest["planned_samples"]
    for name in ("report.md", "report.html"):
        assert (result.run_dir / name).is_file()
    # The samples are in plan order, whatever order the shards were given in.
    plan = load_suite(path)
    keys = [(d["probe_id"], d["context"], d["temperature"], d["sample_index"])
            for d in iter_sample_dicts(result.run_dir / SAMPLES)]
    assert keys == [(c.probe.id, c.context.name, c.temperature, i)
                    for c in plan_cells(plan) for i in range(plan.samples)]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("shards")
    return [_run(out, f"s{i}", Shard(i, 3), samples=2) for i in (1, 2, 3)]


def _copy(run_dir: Path, dest: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run_dir, dest / run_dir.name))


def test_refuses_a_missing_shard(shards: list[Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"shard 2/3 missing.*--shard 2/3"):
        merge_runs([shards[0], shards[2]], MergeOptions(out_dir=tmp_path))
    assert not any(tmp_path.iterdir())  # nothing written


def test_refuses_a_shard_given_twice(shards: list[Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"shard 1/3 is given 2 times"):
        merge_runs([shards[0], *shards], MergeOptions(out_dir=tmp_path))


def test_refuses_shards_of_another_plan(shards: list[Path], tmp_path: Path) -> None:
    other_seed = _run(tmp_path / "o", "seed", Shard(2, 3), samples=2, seed=99)
    with pytest.raises(UsageError, match=r"not shards of one plan: seed differs \(.*99"):
        merge_runs([shards[0], other_seed, shards[2]], MergeOptions(out_dir=tmp_path / "m"))
    other_count = _run(tmp_path / "o", "count", Shard(2, 4), samples=2)
    with pytest.raises(UsageError, match=r"shard count differs \(3 vs 4\)"):
        merge_runs([shards[0], other_count, shards[2]], MergeOptions(out_dir=tmp_path / "m"))
    other_samples = _run(tmp_path / "o", "samples", Shard(2, 3), samples=3)
    with pytest.raises(UsageError, match=r"settings differs \(samples: 2 vs 3\)"):
        merge_runs([shards[0], other_samples, shards[2]], MergeOptions(out_dir=tmp_path / "m"))
    whole = _run(tmp_path / "o", "whole", samples=2)
    with pytest.raises(UsageError, match=r"is not a shard"):
        merge_runs([*shards, whole], MergeOptions(out_dir=tmp_path / "m"))


def test_refuses_a_gap_and_resume_fills_it(shards: list[Path], tmp_path: Path) -> None:
    broken = _copy(shards[1], tmp_path / "c")
    lines = (broken / SAMPLES).read_text().splitlines(keepends=True)
    (broken / SAMPLES).write_text("".join(lines[:-3]))
    with pytest.raises(UsageError, match=r"3 planned samples are missing .*shard 2/3.*--resume"):
        merge_runs([shards[0], broken, shards[2]], MergeOptions(out_dir=tmp_path / "m"))
    # Resuming the shard samples only its own missing part, and the merge then works.
    resumed = resume_run(broken, RunOptions(progress=False))
    assert json.loads((broken / MANIFEST).read_text())["shard"]["index"] == 2
    assert sum(1 for _ in iter_sample_dicts(broken / SAMPLES)) == len(lines)
    assert resumed.run_dir == broken
    merged = merge_runs([shards[0], broken, shards[2]], MergeOptions(out_dir=tmp_path / "m",
                                                                     run_id="x"))
    assert merged.summary["errors"]["n"] == sum(
        1 for s in shards for _ in iter_sample_dicts(s / SAMPLES))


def test_refuses_overlapping_shards(shards: list[Path], tmp_path: Path) -> None:
    broken = _copy(shards[0], tmp_path / "c")
    foreign = (shards[1] / SAMPLES).read_text().splitlines(keepends=True)[0]
    with (broken / SAMPLES).open("a") as fh:
        fh.write(foreign)
    with pytest.raises(UsageError, match=r"shard 1/3\) holds cell .* belongs to shard 2/3"):
        merge_runs([broken, shards[1], shards[2]], MergeOptions(out_dir=tmp_path / "m"))
    twice = _copy(shards[2], tmp_path / "t")
    first = (twice / SAMPLES).read_text().splitlines(keepends=True)[0]
    with (twice / SAMPLES).open("a") as fh:
        fh.write(first)
    with pytest.raises(UsageError, match=r"is in both .* shards overlap"):
        merge_runs([shards[0], shards[1], twice], MergeOptions(out_dir=tmp_path / "m"))


def test_refuses_an_unfinished_shard_and_a_changed_suite(shards: list[Path],
                                                         tmp_path: Path) -> None:
    running = _copy(shards[0], tmp_path / "c")
    m = json.loads((running / MANIFEST).read_text())
    (running / MANIFEST).write_text(json.dumps({**m, "status": "running"}))
    with pytest.raises(UsageError, match=r"not finished .*--resume"):
        merge_runs([running, shards[1], shards[2]], MergeOptions(out_dir=tmp_path / "m"))
    moved = [_copy(s, tmp_path / "d") for s in shards]
    for s in moved:
        m = json.loads((s / MANIFEST).read_text())
        m["suite"]["path"] = str(tmp_path / "gone.yaml")
        (s / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(StoreError, match=r"gone.yaml.*is gone; restore it to merge"):
        merge_runs(moved, MergeOptions(out_dir=tmp_path / "m"))


def test_refuses_a_path_as_run_id_and_an_existing_folder(shards: list[Path],
                                                         tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="plain folder name"):
        merge_runs(shards, MergeOptions(out_dir=tmp_path, run_id="../x"))
    merge_runs(shards, MergeOptions(out_dir=tmp_path, run_id="m"))
    with pytest.raises(UsageError, match="already exists"):
        merge_runs(shards, MergeOptions(out_dir=tmp_path, run_id="m"))


def test_sequential_cannot_be_sharded(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--sequential cannot be combined with --shard"):
        run_suite(DEMO, RunOptions(out_dir=tmp_path, progress=False, use_env=False,
                                   sequential=True, shard=Shard(1, 2)))
