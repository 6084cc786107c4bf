"""The engine: sampling only.

`execute(suite, target, items, writer, tally, run_id, progress, transform, concurrency, pool)`
runs
a fixed pool of worker tasks that pull batched work items from a lazy plan (memory does not
grow with the number of samples), ask the target, label answers with detectors as they
arrive, count them in a `Tally` and append records to the sink. It imports nothing above it:
run orchestration (manifest, analysis, report, exit code) lives in `harness.run`.
"""

from __future__ import annotations

from harness.engine._sampling import Pacer, Sampler, batch_items, execute, work_request
from harness.plan import (
    MAX_BATCH_N,
    Cell,
    WorkItem,
    build_messages,
    derive_seed,
    plan_cells,
    plan_work,
)
from harness.progress import Progress
from harness.tally import CellCounts, Tally, tally_samples

__all__ = [
    "MAX_BATCH_N",
    "Cell",
    "CellCounts",
    "Pacer",
    "Progress",
    "Sampler",
    "Tally",
    "WorkItem",
    "batch_items",
    "build_messages",
    "derive_seed",
    "execute",
    "plan_cells",
    "plan_work",
    "tally_samples",
    "work_request",
]
