"""The one finish step of every run (sampled, resumed, rescored or merged), and the check that
a `--calibration` can apply before anything is sampled."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.analysis import summarize
from harness.calibration import check_usable, corrected_rates, load_calibration
from harness.detectors import specs_for
from harness.errors import UsageError
from harness.gating import EXIT_CODES
from harness.privacy import escape_controls
from harness.report import render_markdown
from harness.run._options import RunResult
from harness.store import MANIFEST, REPORT, SUMMARY, utc_now, write_json, write_private_text
from harness.suites import Suite
from harness.tally import Tally

__all__ = ["check_calibration", "finish_run"]


def finish_run(suite: Suite, run_dir: Path, manifest: dict[str, Any], tally: Tally,
               calibration: Path | None = None) -> RunResult:
    """The one finish step of every run (sampled, resumed or rescored): analyse the tally,
    write summary.json, report.md and the finished manifest, and map the outcome to an exit
    code. A calibration adds judge-corrected rates beside the raw ones."""
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
    from harness.html_report import write_html_report

    write_html_report(run_dir, summary, tally.cells.values())
    return RunResult(manifest["run_id"], run_dir, run_summary.outcome,
                     EXIT_CODES[run_summary.outcome], summary)


def check_calibration(suite: Suite, path: Path) -> None:
    """Fail before sampling when a calibration cannot apply to this suite's detectors."""
    doc = load_calibration(path)
    check_usable(doc, str(path))
    name = doc.get("detector_name")
    used = {spec.name for p in suite.probes for spec in specs_for(p, suite.detectors)}
    if name not in used:
        raise UsageError(f"--calibration {path} is for detector {name!r}, but this suite labels "
                         f"with {', '.join(sorted(used))}; add it to the suite's detectors or "
                         "use a calibration of one of these")
