"""Watch periods: nightly runs over days, anytime-valid monitoring and drift alarms.

Public surface::

    init_watch(name, suite=..., target=..., max_rate=..., days=...) -> WatchFiles
    run_watch(name, as_of=date) -> (LedgerEntry, WatchStatus)
    watch_status(name, as_of=None) -> WatchStatus                  (reads only)
    ingest_signals(name, file) -> IngestResult        (production telemetry)
    evaluate_watch(definition, entries, as_of) -> WatchStatus      (pure)
    timeline_figure(status) / write_timeline(status, path)

See docs/watch.md for the statistics and the false-alarm guarantees.
"""

from __future__ import annotations

from harness.watch.ingest import DailySignal, parse_signals
from harness.watch.model import (
    STATUSES,
    Alarm,
    LedgerEntry,
    RunPoint,
    WatchDefinition,
    WatchStatus,
    evaluate_watch,
)
from harness.watch.plot import timeline_figure, write_timeline
from harness.watch.runner import IngestResult, ingest_signals, init_watch, run_watch, watch_status
from harness.watch.store import WatchFiles, list_watch_names, load_definition, read_ledger

__all__ = [
    "STATUSES",
    "Alarm",
    "DailySignal",
    "IngestResult",
    "LedgerEntry",
    "RunPoint",
    "WatchDefinition",
    "WatchFiles",
    "WatchStatus",
    "evaluate_watch",
    "ingest_signals",
    "init_watch",
    "list_watch_names",
    "load_definition",
    "parse_signals",
    "read_ledger",
    "run_watch",
    "timeline_figure",
    "watch_status",
    "write_timeline",
]
