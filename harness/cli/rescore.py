"""`harness rescore RUN_DIR --detectors NAME[,NAME...]`: re-label stored outputs, no sampling."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from harness.records import COMBINES


def register(sub: Any) -> None:
    """Add the `rescore` subcommand."""
    p = sub.add_parser(
        "rescore", help="re-label a run's stored outputs with other detectors (no sampling)",
        description="Re-label the outputs stored in RUN_DIR and write a new run folder "
        "<run-id>-rescored-<hex> next to it (the original is untouched). Judge verdicts are "
        "cached, so re-scoring with the same judge is free. Outputs stored hashed cannot be "
        "re-labelled and are skipped. Exit codes as for `harness run`.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder under results/")
    p.add_argument("--detectors", default=None, metavar="NAME[,NAME...]",
                   help="detectors to label with (refusal, pattern, canary, moderation, judge, "
                        "module:function or a plug-in); params come from each probe's own "
                        "expectation or the suite. Default: each probe's own expectation")
    p.add_argument("--combine", default=None, choices=COMBINES,
                   help="how labels combine (default: any with --detectors, else the probe's)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where the new run folder goes (default: next to RUN_DIR)")
    p.add_argument("--concurrency", type=int, default=16, metavar="C",
                   help="detector calls in flight (default 16)")
    p.add_argument("--json", action="store_true", help="print summary.json instead of the table")
    p.set_defaults(func=cmd_rescore)


def cmd_rescore(args: argparse.Namespace) -> int:
    """Handler: call `harness.rescore.rescore_run` and map its outcome to an exit code."""
    from harness.report import render_console
    from harness.rescore import parse_detector_names, rescore_run

    names = parse_detector_names(args.detectors) if args.detectors is not None else None
    result = rescore_run(args.run_dir, names, args.combine, out_dir=args.out,
                         concurrency=args.concurrency)
    for w in result.warnings:
        print(f"harness: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.summary, indent=2, default=str))
    else:
        print(render_console(result.summary))
        print(f"re-labelled {result.n_relabelled} sample(s) ({result.n_changed} changed outcome, "
              f"{result.n_kept} kept, {result.n_skipped_no_text} skipped without text)")
        print(f"results: {result.run_dir}")
    return int(result.exit_code)
