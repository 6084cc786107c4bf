"""`harness report RUN_DIR --format html|md|json|junit`: a run's report, rebuilt from its files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.errors import EXIT_HOLDS, UsageError

FORMATS = ("html", "md", "json", "junit")


def register(sub: Any) -> None:
    from harness.junit import DEFAULT_INCONCLUSIVE, INCONCLUSIVE_POLICIES

    p = sub.add_parser("report", help="render a finished run's (or a watch's) report as HTML, "
                       "Markdown, JSON or JUnit",
                       description="Rebuild a run's report from RUN_DIR/summary.json alone (plots "
                       "included; samples.jsonl only for --include-outputs). "
                       "HTML is one self-contained file with embedded plots and no model "
                       "output text unless --include-outputs. RUN_DIR may be a watch folder "
                       "(results/watches/NAME): its report embeds the timeline. Exit 0 when "
                       "written, 2 for a bad RUN_DIR or flag.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=FORMATS, default="html")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="write here; default: RUN_DIR/report.html for html, stdout otherwise "
                        "('-' for stdout)")
    p.add_argument("--inconclusive", choices=INCONCLUSIVE_POLICIES, default=DEFAULT_INCONCLUSIVE,
                   help="JUnit: how an inconclusive gate is reported (default "
                        f"{DEFAULT_INCONCLUSIVE}: most CI views show skipped tests green)")
    p.add_argument("--include-outputs", action="store_true",
                   help="HTML: also show the text of outputs labelled harmful (the page then "
                        "carries a warning banner; share it only with people who must read it)")
    p.add_argument("--max-outputs", type=int, default=200, metavar="N",
                   help="with --include-outputs: at most N outputs (default 200)")
    p.add_argument("--json", action="store_true",
                   help="print where the report was written as JSON (errors as JSON too)")
    p.set_defaults(func=cmd_report)


def _harmful_outputs(samples: Path, limit: int) -> list[dict[str, Any]]:
    from harness.store import iter_sample_dicts

    out: list[dict[str, Any]] = []
    if not samples.is_file():
        return out
    for d in iter_sample_dicts(samples):
        if d.get("outcome") == "harmful":
            out.append({k: d.get(k) for k in ("probe_id", "context", "temperature",
                                             "sample_index", "response")})
            if len(out) >= limit:
                break
    return out


def render_run_report(run_dir: str | Path, fmt: str, *, inconclusive: str = "fail",
                      include_outputs: bool = False, max_outputs: int = 200) -> str:
    """The report text of a finished run in one of FORMATS; RUN_DIR may also be a watch
    folder (RESULTS/watches/NAME), whose report has the timeline embedded."""
    import json

    from harness.store import SAMPLES, SUMMARY, load_run

    watch_dir = Path(run_dir)
    if (watch_dir / "watch.json").is_file():
        from harness.cli.watch import render_watch_report

        if fmt == "junit":
            raise UsageError(f"{watch_dir} is a watch: its report is html, md or json "
                             "(JUnit is per run: pass one of its runs/RUN_ID folders)")
        if include_outputs:
            raise UsageError(f"{watch_dir} is a watch: --include-outputs applies to a run")
        return render_watch_report(watch_dir.resolve().name, fmt,
                                   results=watch_dir.resolve().parent.parent)

    run = load_run(run_dir)
    summary = run.summary
    if summary is None:
        raise UsageError(f"{run.run_dir}: no {SUMMARY}; the run did not finish (resume it "
                         f"with `harness run --resume {run.run_dir}`)")
    if fmt == "json":
        return json.dumps(summary, indent=2, default=str) + "\n"
    if fmt == "md":
        from harness.report import render_markdown

        return render_markdown(summary)
    if fmt == "junit":
        from harness.junit import run_junit

        return run_junit(summary, inconclusive)
    from harness.html_report import render_html
    from harness.tally import count_samples

    samples = run.run_dir / SAMPLES
    # The heat map reads summary.json's context_category; only a summary written before
    # that field existed needs the per-cell counts of samples.jsonl.
    cells = (count_samples(samples).tally.cells.values()
             if "context_category" not in summary and samples.is_file() else None)
    outputs = _harmful_outputs(samples, max_outputs) if include_outputs else None
    return render_html(summary, cells=cells, outputs=outputs,
                       extra_figures=_watch_timeline(run.run_dir))


def _watch_timeline(run_dir: Path) -> list[Any]:
    """The watch's timeline when the run is a night of a watch
    (RESULTS/watches/NAME/runs/RUN_ID), drawn by the watch module's own plot."""
    from harness.errors import HarnessError

    runs = run_dir.resolve().parent
    watch_dir = runs.parent
    if runs.name != "runs" or not (watch_dir / "watch.json").is_file():
        return []
    from harness.watch import watch_status
    from harness.watch.report import timeline_embed

    try:
        status = watch_status(watch_dir.name, results=watch_dir.parent.parent)
    except (HarnessError, OSError):  # an unreadable watch: the run's report still renders
        return []
    return [timeline_embed(status)]


def cmd_report(args: argparse.Namespace) -> int:
    from harness.cli._output import print_json
    from harness.store import write_private_text

    if args.max_outputs < 1:
        raise UsageError(f"--max-outputs must be at least 1, got {args.max_outputs}")
    if args.include_outputs and args.format != "html":
        raise UsageError("--include-outputs applies only to --format html")
    text = render_run_report(args.run_dir, args.format, inconclusive=args.inconclusive,
                             include_outputs=args.include_outputs, max_outputs=args.max_outputs)
    out = args.out
    if out is None and args.format == "html":
        from harness.html_report import REPORT_HTML

        out = str(Path(args.run_dir) / (REPORT_HTML if not args.include_outputs
                                        else "report-with-outputs.html"))
    if out is None or out == "-":
        if args.json and args.format != "json":
            print_json({"format": args.format, "text": text})
        else:
            sys.stdout.write(text)
        return EXIT_HOLDS
    write_private_text(Path(out), text)
    if args.json:
        print_json({"format": args.format, "path": out})
    else:
        print(f"report: {out}")
    return EXIT_HOLDS
