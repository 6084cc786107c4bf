"""Watch records and the pure evaluation of a watch: ledger in, status and alarms out.

The public import path of both halves, which live in private modules:

* `harness.watch._records`: `WatchDefinition` (watch.json), `LedgerEntry` (a ledger.jsonl
  line); `harness.watch._outcomes`: `Alarm`, `RunPoint`, `WatchStatus` and the status
  constants;
* `harness.watch._evaluate`: `evaluate_watch` and its helpers (segments, seeds, CUSUM
  alternative, drift alarms), with the account of how false alarms are controlled.

No I/O here: `evaluate_watch` takes the definition and the ledger entries (as read by
`harness.watch.store`) and the date to evaluate at, and returns a `WatchStatus`.
See docs/watch.md for the statistics.
"""

from __future__ import annotations

from harness.watch._evaluate import _changed as _changed
from harness.watch._evaluate import _drift_alarms as _drift_alarms
from harness.watch._evaluate import (
    cusum_alternative,
    evaluate_watch,
    segment_indices,
    stable_seed,
)
from harness.watch._outcomes import STATUS_EXIT, STATUSES, Alarm, RunPoint, Status, WatchStatus
from harness.watch._records import DRIFT_FAMILIES, SCHEMA_VERSION, LedgerEntry, WatchDefinition

__all__ = [
    "DRIFT_FAMILIES",
    "SCHEMA_VERSION",
    "STATUSES",
    "STATUS_EXIT",
    "Alarm",
    "LedgerEntry",
    "RunPoint",
    "Status",
    "WatchDefinition",
    "WatchStatus",
    "cusum_alternative",
    "evaluate_watch",
    "segment_indices",
    "stable_seed",
]
