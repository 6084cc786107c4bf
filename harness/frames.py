"""Runs, samples and watches as pandas DataFrames, for analysts (re-exported by `harness`).

    import harness
    runs = harness.load_runs(["results/"])          # one row per run and group
    samples = harness.load_samples("results/<run-id>")  # one row per sample, with run_id
    nights = harness.load_watch("nightly-fix")      # one row per night of a watch

Reads files only (summary.json, manifest.json, samples.jsonl, the watch ledger); never the
model output text (samples carry `response_chars`, not the response).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import StoreError

RUN_COLUMNS = ("run_id", "suite", "target", "model", "fingerprint", "started", "finished",
               "outcome", "confidence_level", "by", "key", "group", "n", "n_scored",
               "n_harmful", "n_blocked", "n_error", "rate", "ci_low", "ci_high", "method",
               "deciding_bound", "gate_low", "gate_high", "max_rate", "verdict")


def _most_common(counts: Mapping[str, int] | None) -> str | None:
    if not counts:
        return None
    return max(sorted(counts), key=lambda k: counts[k])


def _run_dirs(paths: Iterable[str | Path] | str | Path) -> list[Path]:
    """Run folders from run folders and results folders (whose children are runs)."""
    from harness.store import MANIFEST, find_runs

    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / MANIFEST).is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(r.run_dir for r in find_runs(p))
        else:
            raise StoreError(f"{p}: neither a run folder (with {MANIFEST}) nor a results "
                             "folder; pass run folders or results/")
    return out


def run_rows(summary: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows `load_runs` makes of one run (pure)."""
    from harness.plots import deciding_bound

    base = {
        "run_id": summary.get("run_id") or manifest.get("run_id"),
        "suite": summary.get("suite") or (manifest.get("suite") or {}).get("name"),
        "target": summary.get("target") or (manifest.get("target") or {}).get("spec"),
        "model": _most_common(summary.get("models")),
        "fingerprint": _most_common(summary.get("system_fingerprints")),
        "started": summary.get("started"), "finished": summary.get("finished"),
        "outcome": summary.get("outcome"), "confidence_level": summary.get("confidence_level"),
    }
    rows = []
    for g in summary.get("groups") or []:
        row = dict(base)
        for col in RUN_COLUMNS[len(base):]:
            row[col] = g.get(col)
        row["group"] = f"{g.get('by')}:{g.get('key')}"
        row["deciding_bound"] = deciding_bound(g)
        rows.append(row)
    return rows


def load_runs(paths: Iterable[str | Path] | str | Path) -> Any:
    """One row per run and group (columns RUN_COLUMNS) for finished runs among `paths` (run
    folders, or results folders holding runs). Unfinished runs (no summary.json) are left out."""
    import pandas as pd

    from harness.store import load_run

    rows: list[dict[str, Any]] = []
    for d in _run_dirs(paths):
        run = load_run(d)
        if run.summary is not None:
            rows.extend(run_rows(run.summary, run.manifest))
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def load_samples(run: str | Path) -> Any:
    """One row per sample of a run folder, with its `run_id` (columns in docs/architecture.md);
    no output text."""
    from harness.store import load_run, records_frame

    loaded = load_run(run)
    if not loaded.samples_path.is_file():
        raise StoreError(f"{loaded.run_dir}: no samples.jsonl; the run has not sampled yet")
    return records_frame(loaded.records())


def load_watch(name: str, results: str | Path = "results") -> Any:
    """One row per run of a watch: night (`as_of`), run_id, segment, n, n_harmful, rate, the
    run's own interval (ci_low/ci_high) and the confidence sequence after it (cs_low/cs_high),
    plus the watch's max_rate and status."""
    import pandas as pd

    from harness.watch import watch_status

    status = watch_status(name, results=results).to_dict()
    rows = [{**p, "watch": status["name"], "max_rate": status["max_rate"],
             "status": status["status"]} for p in status["runs_detail"]]
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["as_of"] = pd.to_datetime(frame["as_of"])
    return frame
