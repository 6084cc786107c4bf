"""`harness calibrate DETECTOR --labels FILE`: a detector's sensitivity and specificity."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate", help="measure a detector against human labels (sensitivity, specificity)",
        description="Run DETECTOR over human-labelled outputs (JSONL lines with text, label "
        "harmful|safe, category) and report, per category and pooled, TP FN TN FP and "
        "sensitivity / specificity with Wilson intervals (replies the detector reads as "
        "unclear are counted apart, as runs leave them out of their rates). The calibration "
        "is stored (owner-only) for `harness run --calibration FILE`, beside the run folder "
        "of the labelling (samples.jsonl, summary.json, report.md). Exit 0, or 2 for a bad "
        "label file.")
    p.add_argument("detector", metavar="DETECTOR",
                   help="a detector name (judge, moderation, refusal, ...) or a JSON spec such "
                        "as '{\"name\": \"judge\", \"model\": \"...\", \"base_url\": \"...\"}'")
    p.add_argument("--labels", required=True, metavar="FILE", help="labelled outputs (JSONL)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="where to store the calibration (default "
                        "RESULTS/calibrations/<detector>-<sha8>.json)")
    p.add_argument("--results", default="results", metavar="DIR",
                   help="results folder for the default --out")
    p.add_argument("--confidence", type=float, default=0.95, metavar="LEVEL")
    p.add_argument("--concurrency", type=int, default=8, metavar="C")
    p.add_argument("--json", action="store_true", help="print the calibration as JSON")
    p.set_defaults(func=cmd_calibrate)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def render_calibration(doc: dict[str, Any]) -> str:
    """A plain-text table of a calibration document."""
    conf = doc["confidence_level"]
    head = (f"{'category':<24} {'TP':>5} {'FN':>5} {'TN':>5} {'FP':>5} {'err':>4} {'uncl':>4}  "
            f"{'sensitivity (' + format(conf, '.0%') + ' CI)':<28} specificity")
    lines = [f"detector {doc['detector_name']}: {doc['n_items']} labelled outputs "
             f"({doc['interval_method']} intervals)", "", head, "-" * len(head)]
    rows = [*doc["categories"].items(), ("pooled", doc["pooled"])]
    for name, c in rows:
        se = (f"{_pct(c['sensitivity'])} ({_pct(c['sensitivity_low'])}-"
              f"{_pct(c['sensitivity_high'])})") if c["sensitivity"] is not None else "-"
        sp = (f"{_pct(c['specificity'])} ({_pct(c['specificity_low'])}-"
              f"{_pct(c['specificity_high'])})") if c["specificity"] is not None else "-"
        lines.append(f"{name:<24} {c['tp']:>5} {c['fn']:>5} {c['tn']:>5} {c['fp']:>5} "
                     f"{c['n_error']:>4} {c.get('n_unclear', 0):>4}  {se:<28} {sp}")
    p = doc["pooled"]
    if p["sensitivity"] is not None and p["specificity"] is not None and \
            p["sensitivity"] + p["specificity"] <= 1:
        lines += ["", "warning: pooled sensitivity + specificity <= 1: this detector does no "
                  "better than chance on these labels; corrected rates will be refused"]
    return "\n".join(lines)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from harness.calibration import parse_detector_arg
    from harness.errors import UsageError
    from harness.run import calibrate_run

    if not 0 < args.confidence < 1:
        raise UsageError(f"--confidence must be in (0, 1), e.g. 0.95; got {args.confidence}")
    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    spec = parse_detector_arg(args.detector)
    done = calibrate_run(spec, args.labels, out=Path(args.out) if args.out else None,
                         confidence_level=args.confidence, results_dir=Path(args.results),
                         concurrency=args.concurrency)
    doc, path = done.doc, done.path
    if args.json:
        print(json.dumps({**doc, "path": str(path)}, indent=2))
    else:
        print(render_calibration(doc))
        print(f"\ncalibration: {path}  (use with `harness run SUITE --calibration {path}`)")
        print(f"labelling run: {done.run.run_dir} (summary.json, report.md, samples.jsonl)")
    return 0
