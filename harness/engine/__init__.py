"""The engine: sampling only.

`execute(suite, target, items, writer, tally, run_id, progress, transform, concurrency)` runs
a fixed pool of worker tasks that pull batched work items from a lazy plan (memory does not
grow with the number of samples), ask the target, label answers with detectors as they
arrive, count them in a `Tally` and append records to the sink. It imports nothing above it:
run orchestration (manifest, analysis, report, exit code) lives in `harness.run`.

The orchestration names this package used to hold (`run_suite`, `RunOptions`, ...) and the
planning and counting names (now `harness.plan`, `harness.tally`) are still importable from
here while callers move; new code imports them from their own modules.
"""

from __future__ import annotations

from typing import Any

from harness.engine._sampling import Pacer, Progress, Sampler, execute
from harness.plan import (
    MAX_BATCH_N,
    Cell,
    WorkItem,
    build_messages,
    derive_seed,
    plan_cells,
    plan_work,
)
from harness.tally import CellCounts, Tally, tally_samples

_MOVED_TO_RUN = ("RunOptions", "RunResult", "check_calibration", "parse_as_of", "resolve_suite",
                 "resume_run", "run_suite", "today")


def __getattr__(name: str) -> Any:
    # Transitional (issue 10): `from harness.engine import run_suite` keeps working while
    # other code moves to `harness.run`. Resolved on access, so importing the engine does not
    # import the orchestration above it.
    if name in _MOVED_TO_RUN:
        import harness.run

        return getattr(harness.run, name)
    raise AttributeError(f"module 'harness.engine' has no attribute {name!r}")


__all__ = [
    "MAX_BATCH_N",
    "Cell",
    "CellCounts",
    "Pacer",
    "Progress",
    "Sampler",
    "Tally",
    "WorkItem",
    "build_messages",
    "derive_seed",
    "execute",
    "plan_cells",
    "plan_work",
    "tally_samples",
]
