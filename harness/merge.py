"""`harness merge`: join the shard runs of one plan (`harness run --shard I/N`) into one run.

The shards must come from one plan: the same suite file (sha256), resolved settings, seed,
target and shard count, each shard exactly once, each finished, and together they must hold
every planned sample exactly once (no gap, no overlap). The merged folder is then finished
by `run.finish_run`, the finish step of every run, so its summary.json is the one the
unsharded run at the same seed would have written.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.plan import Cell, plan_cells, shard_of
from harness.records import temperature_key
from harness.run import RunResult, finish_run, shard_from_manifest, stored_suite
from harness.store import (
    MANIFEST,
    SAMPLES,
    LoadedRun,
    SampleWriter,
    iter_sample_dicts,
    load_run,
    make_private_dir,
    new_run_id,
    write_json,
)
from harness.tally import Tally

__all__ = ["MergeOptions", "merge_runs"]

# Settings that say how a shard was sampled, not what: they may differ between machines.
_INFRA_SETTINGS = frozenset({"concurrency", "target_options", "base_url", "api_key_env"})


@dataclass(frozen=True)
class MergeOptions:
    """Where the merged run goes: `out_dir/<run_id>/` (a new run id when None)."""

    out_dir: Path = Path("results")
    run_id: str | None = None


def _plan_identity(m: dict[str, Any]) -> dict[str, Any]:
    """What must be equal for two shards to be parts of one plan."""
    settings = {k: v for k, v in (m.get("settings") or {}).items() if k not in _INFRA_SETTINGS}
    return {
        "suite sha256": (m.get("suite") or {}).get("sha256"),
        "target": (m.get("target") or {}).get("spec"),
        "seed": settings.get("seed"),
        "settings": settings,
        "shard count": (m.get("shard") or {}).get("count"),
    }


def _check_one_plan(runs: Sequence[LoadedRun]) -> None:
    first = runs[0]
    want = _plan_identity(first.manifest)
    for run in runs:
        if not run.manifest.get("shard"):
            raise UsageError(f"{run.run_dir} is not a shard (it was not run with --shard I/N); "
                             "merge only the shard runs of one plan")
        status = run.manifest.get("status")
        if status != "finished":
            raise UsageError(f"{run.run_dir} is not finished (status {status!r}); finish it "
                             f"with `harness run --resume {run.run_dir}` before merging")
        got = _plan_identity(run.manifest)
        for name, value in want.items():
            if got[name] == value:
                continue
            if name == "settings":
                diff = sorted(k for k in set(value) | set(got[name])
                              if value.get(k) != got[name].get(k))
                detail = "; ".join(f"{k}: {value.get(k)!r} vs {got[name].get(k)!r}"
                                   for k in diff)
            else:
                detail = f"{value!r} vs {got[name]!r}"
            raise UsageError(f"{run.run_dir} and {first.run_dir} are not shards of one plan: "
                             f"{name} differs ({detail}); merge shards run with the same "
                             "suite, settings, seed and target")
    count = int(want["shard count"])
    by_index: dict[int, list[LoadedRun]] = defaultdict(list)
    for run in runs:
        by_index[int(run.manifest["shard"]["index"])].append(run)
    twice = {i: rs for i, rs in by_index.items() if len(rs) > 1}
    if twice:
        i, rs = min(twice.items())
        raise UsageError(f"shard {i}/{count} is given {len(rs)} times: "
                         f"{', '.join(str(r.run_dir) for r in rs)}; pass each shard once")
    missing = [i for i in range(1, count + 1) if i not in by_index]
    if missing:
        raise UsageError(f"shard{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(f'{i}/{count}' for i in missing)} missing: "
                         f"{len(runs)} of {count} shards given; run "
                         f"`harness run SUITE --shard {missing[0]}/{count}` with the same "
                         "settings and pass its folder too")


def _check_coverage(runs: Sequence[LoadedRun], cells: Sequence[Cell], samples: int,
                    count: int) -> dict[str, list[tuple[LoadedRun, int]]]:
    """Per cell key, where its samples are; raise on a sample outside its shard, a sample
    twice, or a planned sample missing."""
    planned = {c.key.as_str(): c for c in cells}
    found: dict[str, list[tuple[LoadedRun, int]]] = defaultdict(list)
    seen: dict[tuple[str, int], Path] = {}
    for run in runs:
        shard = shard_from_manifest(run.manifest)
        assert shard is not None  # checked in _check_one_plan
        for d in iter_sample_dicts(run.samples_path):
            key = f"{d['probe_id']}|{d['context']}|{temperature_key(float(d['temperature']))}"
            index = int(d["sample_index"])
            cell = planned.get(key)
            if cell is None or not 0 <= index < samples:
                raise UsageError(f"{run.run_dir}: sample {key} #{index} is not in the plan "
                                 f"of {len(cells)} cells x {samples} samples; this folder "
                                 "does not belong to these shards")
            if shard_of(cell.key, count) != shard.index:
                raise UsageError(f"{run.run_dir} (shard {shard}) holds cell {key}, which "
                                 f"belongs to shard {shard_of(cell.key, count)}/{count}: "
                                 "shards overlap; re-run this shard with this harness version")
            if (key, index) in seen:
                raise UsageError(f"sample {key} #{index} is in both {seen[(key, index)]} and "
                                 f"{run.run_dir}: shards overlap; pass each shard once")
            seen[(key, index)] = run.run_dir
            found[key].append((run, index))
    by_shard = {int(r.manifest["shard"]["index"]): r for r in runs}
    gaps = [(c, i) for c in cells for i in range(samples) if (c.key.as_str(), i) not in seen]
    if gaps:
        cell, index = gaps[0]
        owner = by_shard[shard_of(cell.key, count)]
        raise UsageError(f"{len(gaps)} planned sample{'s are' if len(gaps) > 1 else ' is'} "
                         f"missing (first: {cell.key.as_str()} #{index}, shard "
                         f"{owner.manifest['shard']['index']}/{count} in {owner.run_dir}); "
                         f"complete it with `harness run --resume {owner.run_dir}`")
    return found


def _merged_manifest(runs: Sequence[LoadedRun], run_id: str, n_cells: int,
                     samples: int) -> dict[str, Any]:
    m = copy.deepcopy(runs[0].manifest)
    for key in ("shard", "resumed", "outcome", "sequential"):
        m.pop(key, None)
    ordered = sorted(runs, key=lambda r: int(r.manifest["shard"]["index"]))
    m.update({
        "run_id": run_id,
        "planned_samples": n_cells * samples,
        "started": min(str(r.manifest.get("started")) for r in runs),
        "finished": None,
        "status": "running",
        "samples_written_this_session": 0,
        "sampling_seconds": max(float(r.manifest.get("sampling_seconds") or 0) for r in runs),
        "merged_from": [{"run_id": r.run_id, "shard": r.manifest["shard"],
                         "path": str(r.run_dir.resolve())} for r in ordered],
    })
    return m


def merge_runs(run_dirs: Sequence[str | Path], options: MergeOptions | None = None,
               ) -> RunResult:
    """Check that `run_dirs` are the complete shards of one plan and write them as one run
    folder (samples in plan order), finished like any run: summary.json, reports, exit code.

    Raises UsageError (exit 2) naming the folder and the fix when they are not.
    """
    options = options or MergeOptions()
    if not run_dirs:
        raise UsageError("give the shard run folders to merge, e.g. "
                         "`harness merge results/shard-1 results/shard-2`")
    runs = [load_run(d) for d in run_dirs]
    _check_one_plan(runs)
    first = runs[0]
    suite = stored_suite(first.run_dir, first.manifest, "merge")
    cells = plan_cells(suite)
    count = int(first.manifest["shard"]["count"])
    found = _check_coverage(runs, cells, suite.samples, count)

    run_id = options.run_id or new_run_id(suite.name)
    if Path(run_id).name != run_id or run_id in (".", ".."):
        raise UsageError(f"--run-id {run_id!r} must be a plain folder name, e.g. nightly-merged")
    run_dir = make_private_dir(Path(options.out_dir)) / run_id
    if run_dir.exists():
        raise UsageError(f"{run_dir} already exists; choose another --run-id or --out")
    make_private_dir(run_dir)
    manifest = _merged_manifest(runs, run_id, len(cells), suite.samples)
    write_json(run_dir / MANIFEST, manifest)
    # Plan order (cell, then sample index), so the merged file does not depend on the order
    # the shards are given in. The records are held in memory for the reordering.
    wanted: dict[Path, dict[tuple[str, int], int]] = defaultdict(dict)
    order = {c.key.as_str(): n for n, c in enumerate(cells)}
    for key, where in found.items():
        for run, index in where:
            wanted[run.run_dir][(key, index)] = order[key] * suite.samples + index
    slots: list[dict[str, Any] | None] = [None] * (len(cells) * suite.samples)
    for run in runs:
        positions = wanted[run.run_dir]
        for d in iter_sample_dicts(run.samples_path):
            t = temperature_key(float(d["temperature"]))
            slots[positions[(f"{d['probe_id']}|{d['context']}|{t}", int(d["sample_index"]))]] = d
    tally = Tally()
    with SampleWriter(run_dir / SAMPLES) as writer:
        for rec in slots:
            assert rec is not None  # every slot was checked present
            writer.add(rec)
            tally.add(rec)
    return finish_run(suite, run_dir, manifest, tally)
