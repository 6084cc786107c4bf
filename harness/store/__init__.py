"""Results on disk: `results/<run-id>/` with manifest.json, samples.jsonl, summary.json, report.md.

`samples.jsonl` is append-only: records are written in batches as samples finish, so a
killed run loses at most the batch in flight and `--resume` samples only what is missing.
A torn last line (the process died mid-write) is cut off on resume, never parsed as data.
Folders are created readable by their owner only (0700; files 0600): outputs can hold
harmful text and personal data.

The package: `_files` (names, owner-only folders, the one atomic write, JSON), `_samples`
(the writer and the repairs a resume makes), `_read` (reading samples.jsonl back, checked
line by line), `_runs` (lock, interrupt guard, opening run folders).
"""

from __future__ import annotations

from harness.store._files import (
    MANIFEST,
    REPORT,
    SAMPLES,
    SCHEMA_VERSION,
    SUMMARY,
    atomic_write,
    make_private_dir,
    new_run_id,
    read_json,
    utc_now,
    write_json,
    write_private_text,
)
from harness.store._read import (
    iter_numbered_samples,
    iter_records,
    iter_sample_dicts,
    record_shape_problem,
)
from harness.store._runs import LoadedRun, RunLock, find_runs, load_run, records_frame, run_guard
from harness.store._samples import RETRIED, SampleWriter, repair_torn_tail, set_aside_errors

__all__ = [
    "MANIFEST",
    "REPORT",
    "RETRIED",
    "SAMPLES",
    "SCHEMA_VERSION",
    "SUMMARY",
    "LoadedRun",
    "RunLock",
    "SampleWriter",
    "atomic_write",
    "find_runs",
    "iter_numbered_samples",
    "iter_records",
    "iter_sample_dicts",
    "load_run",
    "make_private_dir",
    "new_run_id",
    "read_json",
    "record_shape_problem",
    "records_frame",
    "repair_torn_tail",
    "run_guard",
    "set_aside_errors",
    "utc_now",
    "write_json",
    "write_private_text",
]
