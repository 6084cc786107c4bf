"""Sampling a run: the whole plan in one pass (a batch target prepared first), or in rounds
for `--sequential`, each asking `analysis.sequential_decision` whether to stop."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.detectors import DetectorContext, DetectorPool
from harness.engine import Progress, batch_items, execute
from harness.plan import MAX_BATCH_N, Cell, plan_cells, plan_work, shard_cells
from harness.privacy import escape_controls, record_transform
from harness.run._options import RunOptions
from harness.store import MANIFEST, SAMPLES, SampleWriter, write_json
from harness.suites import Suite
from harness.tally import Tally
from harness.targets import target_spec
from harness.targets.base import BatchTarget, Target

__all__ = ["sample_run"]


async def sample_run(suite: Suite, options: RunOptions, target: Target, run_dir: Path,
                     run_id: str, tally: Tally, done: set[tuple[str, int]] | None,
                     manifest: dict[str, Any]) -> dict[str, Any]:
    """Sample what is left of the plan (`done`: samples already stored) into run_dir, closing
    the target and the run's detectors after; return the manifest with what sampling did."""
    concurrency = suite.concurrency or 16
    manifest["target"] = {"spec": target_spec(options.target), **target.describe()}
    write_json(run_dir / MANIFEST, manifest)
    all_cells = plan_cells(suite)
    cells = shard_cells(all_cells, options.shard)
    # Batches as in the unsharded run: only the plan's first cell has its first request split.
    split_first = not cells or cells[0].key == all_cells[0].key
    def batch_n() -> int:
        return MAX_BATCH_N if target.supports_n else 1

    # Storage mode, forensic capture and secret scrubbing (always: keys never reach disk).
    transform = record_transform(suite.storage, suite.forensic_capture, suite.seed)
    samples_used = 0
    sequential_info: dict[str, Any] | None = None
    # This run's detectors, closed with it; the judge and moderation reach their models
    # with the run's retry policy.
    pool = DetectorPool(DetectorContext(options.retry_policy, concurrency))
    t0 = time.monotonic()
    try:
        with SampleWriter(run_dir / SAMPLES) as writer:
            if not options.sequential:
                if isinstance(target, BatchTarget):
                    # The whole plan as batch jobs first; the engine then labels the answers.
                    await target.prepare(
                        batch_items(suite, plan_work(cells, suite.samples, batch_n, done),
                                    split_first),
                        run_dir, _notifier(options.progress))
                total = len(cells) * suite.samples - (len(done) if done else 0)
                progress = Progress(total, options.progress)
                items = plan_work(cells, suite.samples, batch_n, done)
                runner = await execute(suite, target, items, writer, tally, run_id, progress,
                                       transform, concurrency, pool, split_first)
                progress.close()
                if isinstance(target, BatchTarget):
                    # Every answer was asked for (or the engine stopped on them): a resume
                    # asks a new batch for what is missing or in error.
                    writer.flush()
                    target.consumed()
                if runner.fatal is not None:
                    raise runner.fatal
            else:
                sequential_info = await _run_sequential(
                    suite, options, target, cells, batch_n, writer, tally, run_id, transform,
                    concurrency, done, pool)
            samples_used = writer.written
    finally:
        await target.aclose()
        await pool.aclose()
    manifest["target"] = {"spec": target_spec(options.target), **target.describe()}
    if sequential_info is not None:
        manifest["sequential"] = sequential_info
    manifest["samples_written_this_session"] = samples_used
    manifest["sampling_seconds"] = round(time.monotonic() - t0, 3)
    return manifest


def _notifier(progress: bool | None) -> Callable[[str], None]:
    """Status lines of a batch job on stderr (none with --quiet)."""
    if progress is False:
        return lambda line: None
    return lambda line: print(f"harness: {escape_controls(line)}", file=sys.stderr, flush=True)


async def _run_sequential(suite: Suite, options: RunOptions, target: Target, cells: list[Cell],
                          batch_n: Callable[[], int], writer: SampleWriter, tally: Tally,
                          run_id: str,
                          transform: Any, concurrency: int,
                          done: set[tuple[str, int]] | None, pool: DetectorPool,
                          ) -> dict[str, Any]:
    """Sample in rounds; stop when the anytime-valid bounds settle every gated group."""
    from harness.analysis import sequential_decision  # scipy: not before the first request

    fixed_plan = len(cells) * suite.samples
    budget = options.max_samples or 2 * fixed_plan
    per_round = max(1, math.ceil(suite.samples / 4))
    # The looks are fixed before sampling: "below" spends its alpha over exactly these.
    planned_looks = max(1, math.ceil(budget / max(len(cells) * per_round, 1)))
    rounds = 0
    index = 0
    decision: dict[str, Any] = {"stop": False, "verdicts": {}}
    previous: Any = None
    stopped_early = False
    progress = Progress(budget, options.progress)
    while True:
        round_samples = min(per_round, (budget - tally.n) // max(len(cells), 1))
        if round_samples <= 0:
            # Budget spent: the last decision stands, marked as such.
            decision, previous = sequential_decision(tally, suite, previous,
                                                     budget_exhausted=True,
                                                     look=max(rounds, 1),
                                                     planned_looks=planned_looks)
            break
        items = plan_work(cells, round_samples, batch_n, done, start_index=index)
        runner = await execute(suite, target, items, writer, tally, run_id, progress, transform,
                               concurrency, pool)
        if runner.fatal is not None:
            progress.close()
            raise runner.fatal
        index += round_samples
        rounds += 1
        decision, previous = sequential_decision(tally, suite, previous, look=rounds,
                                                 planned_looks=planned_looks)
        # Stop when every gate is settled, or as soon as one is settled "above": the run is
        # then breached whatever the others say.
        if decision["stop"] or decision.get("verdict") == "above":
            stopped_early = True
            break
    progress.close()
    used = tally.n
    return {
        "rounds": rounds,
        "samples_per_cell_per_round": per_round,
        "planned_looks": planned_looks,
        "samples_used": used,
        "fixed_plan_samples": fixed_plan,
        "samples_saved": max(fixed_plan - used, 0),
        "budget": budget,
        "stopped_early": stopped_early,
        "reason": decision.get("reason"),
        "method": decision.get("method"),
        "verdicts": decision.get("verdicts", {}),
    }
