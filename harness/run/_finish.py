"""The one finish step of every run (sampled, resumed, rescored or merged), and the check that
a `--calibration` can apply before anything is sampled.

The finish step's modules (the analysis with scipy, the HTML report with matplotlib and
Jinja2) cost more to import than a short run takes to sample (1-2 s of CPU on the project's
machine, docs/performance.md), so nothing that runs before the first request imports them:
they are imported here, inside the functions, and `warm_finish_imports` imports them in a
background thread while the run samples and its event loop mostly waits for answers.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.detectors import specs_for
from harness.errors import UsageError
from harness.privacy import escape_controls
from harness.run._options import RunResult
from harness.store import MANIFEST, REPORT, SUMMARY, utc_now, write_json, write_private_text
from harness.suites import Suite
from harness.tally import Tally

__all__ = ["FINISH_MODULES", "check_calibration", "finish_run", "warm_finish_imports"]

FINISH_MODULES = (
    "harness.analysis", "harness.calibration", "harness.report", "harness.html_report",
    "harness.plots", "matplotlib.figure", "matplotlib.ticker", "matplotlib.backends.backend_agg",
    "jinja2",
)
"""What `finish_run` imports beyond what sampling already did (heaviest first)."""
_import = importlib.import_module


def warm_finish_imports() -> threading.Thread:
    """Import `FINISH_MODULES` in a daemon thread, started when sampling starts; the caller
    joins it before `finish_run`.

    Sampling a remote endpoint leaves the interpreter idle between answers, so the imports
    finish during sampling instead of after it; where sampling is CPU-bound (a local
    endpoint answering in no time) the two share the CPU and the run takes as long as
    before. The thread imports only what sampling does not (scipy, matplotlib, Jinja2 and
    the harness modules above the engine; the openai client's lazy imports are its own), so
    the two threads never wait for each other's imports. The join matters: two threads
    importing the same package at once can be handed a half-initialised module by Python's
    import-deadlock resolution (matplotlib's circular imports did that in a test). An
    import that fails here is left to `finish_run`, which imports the module again and
    reports the error.
    """
    def warm() -> None:
        for name in FINISH_MODULES:
            try:
                _import(name)
            except Exception:
                return

    thread = threading.Thread(target=warm, name="harness-warm-imports", daemon=True)
    thread.start()
    return thread


def finish_run(suite: Suite, run_dir: Path, manifest: dict[str, Any], tally: Tally,
               calibration: Path | None = None) -> RunResult:
    """The one finish step of every run (sampled, resumed or rescored): analyse the tally,
    write summary.json, report.md and the finished manifest, and map the outcome to an exit
    code. A calibration adds judge-corrected rates beside the raw ones."""
    from harness.analysis import summarize
    from harness.calibration import corrected_rates
    from harness.gating import EXIT_CODES
    from harness.html_report import write_html_report
    from harness.report import render_markdown

    manifest["finished"] = utc_now()
    run_summary = summarize(tally, suite, manifest)
    if calibration is not None:
        run_summary = replace(run_summary,
                              corrected=corrected_rates(run_summary.to_dict(), calibration))
    summary = run_summary.to_dict()
    manifest["tokens"] = {**summary["tokens"], "by_category": {
        g.key: {"in": g.tokens_in, "out": g.tokens_out} for g in run_summary.groups
        if g.by == "category"}}
    manifest["status"] = "finished"
    manifest["outcome"] = run_summary.outcome
    write_json(run_dir / MANIFEST, manifest)
    write_json(run_dir / SUMMARY, summary)
    write_private_text(run_dir / REPORT, escape_controls(render_markdown(summary)))
    write_html_report(run_dir, summary, tally.cells.values())
    return RunResult(manifest["run_id"], run_dir, run_summary.outcome,
                     EXIT_CODES[run_summary.outcome], summary)


def check_calibration(suite: Suite, path: Path) -> None:
    """Fail before sampling when a calibration cannot apply to this suite's detectors."""
    from harness.calibration import check_usable, load_calibration

    doc = load_calibration(path)
    check_usable(doc, str(path))
    name = doc.get("detector_name")
    used = {spec.name for p in suite.probes for spec in specs_for(p, suite.detectors)}
    if name not in used:
        raise UsageError(f"--calibration {path} is for detector {name!r}, but this suite labels "
                         f"with {', '.join(sorted(used))}; add it to the suite's detectors or "
                         "use a calibration of one of these")
