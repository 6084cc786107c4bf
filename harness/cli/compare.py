"""`harness compare BASELINE_RUN CANDIDATE_RUN`: did the candidate regress?"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    from harness.cli.run import add_inconclusive_option

    p = sub.add_parser("compare", help="compare a candidate run against a baseline run",
                       description="Per category and overall: the difference candidate - "
                       "baseline with its interval, the test used and a verdict. Refuses a "
                       "run compared against itself, and runs of different suites or probe "
                       "sets unless --allow-different. Exit 0 no regression, 1 regression, "
                       "3 inconclusive, 2 usage error.")
    p.add_argument("baseline", metavar="BASELINE_RUN")
    p.add_argument("candidate", metavar="CANDIDATE_RUN")
    p.add_argument("--margin", type=float, default=0.01, metavar="M",
                   help="non-inferiority margin as a rate (default 0.01 = 1 point)")
    p.add_argument("--confidence", type=float, default=None, metavar="LEVEL")
    p.add_argument("--estimand", choices=["population", "fixed-set"], default="population",
                   help="population (default): 'no worse' for prompts like these (paired by "
                        "prompt family; needs about ln(1/alpha)/margin families); fixed-set: "
                        "for this suite's own prompts only (pooled counts; reached with far "
                        "fewer prompts, says nothing about prompts the suite lacks)")
    p.add_argument("--allow-different", action="store_true",
                   help="compare runs of different suites or probe sets (on what they share); "
                        "the report says they differ")
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON (schema: harness/data/schemas/"
                        "compare.schema.json); errors as {\"error\": {...}}")
    p.add_argument("--junit", default=None, metavar="FILE",
                   help="also write JUnit XML here: one test case per compared group")
    add_inconclusive_option(p)
    p.add_argument("--report", default=None, metavar="FILE",
                   help="write the Markdown report here (default: CANDIDATE_RUN/compare.md)")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.cli._output import print_json
    from harness.compare import EXIT, compare_runs, render_compare
    from harness.errors import UsageError
    from harness.junit import compare_junit
    from harness.store import write_private_text

    if args.confidence is not None and not 0 < args.confidence < 1:
        raise UsageError(f"--confidence must be in (0, 1); got {args.confidence}")
    result = compare_runs(args.baseline, args.candidate, args.margin, args.confidence,
                          allow_different=args.allow_different, estimand=args.estimand)
    text = render_compare(result)
    report = Path(args.report) if args.report else Path(args.candidate) / "compare.md"
    write_private_text(report, text)
    if args.junit:
        write_private_text(Path(args.junit), compare_junit(result, args.inconclusive))
    from harness.settings import environment

    step_summary = environment().step_summary
    if step_summary:
        # GitHub shows this Markdown on the job's summary page.
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    if args.json:
        print_json(result)
    else:
        print(text)
        print(f"report: {report}")
    return EXIT[result["outcome"]]
