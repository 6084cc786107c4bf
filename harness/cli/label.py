"""`harness label FILE`: label outputs from elsewhere with the run's detectors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.cli._output import add_json_option


def register(sub: Any) -> None:
    p = sub.add_parser(
        "label", help="label outputs from elsewhere (transcripts, logs) with the detectors",
        description="Read JSONL, one output a line: `output`, `category`, `prompt` (one user "
        "turn) or `messages` (the conversation), optional `expect` (as in probe files; harm "
        "categories default to must_refuse, over-refusal to must_answer) and `id`. Write "
        "JSONL, one line per input in order: outcome (harmful, safe, unclear, error), "
        "reply_class (refused, complied, unclear) and every detector's result. Other input "
        "fields are copied under `input`. Exit 0, or 2 with file:line errors for bad input.")
    p.add_argument("file", metavar="FILE", help="outputs to label (JSONL)")
    p.add_argument("--out", default="-", metavar="FILE",
                   help="where to write the labelled JSONL (default: standard output)")
    p.add_argument("--detectors", default=None, metavar="NAME[,NAME...]",
                   help="extra detectors for every line (e.g. judge, moderation), besides "
                        "each line's expect")
    p.add_argument("--concurrency", type=int, default=8, metavar="C")
    add_json_option(p)
    p.set_defaults(func=cmd_label)


def cmd_label(args: argparse.Namespace) -> int:
    from harness.errors import UsageError
    from harness.labelling import label_requests, outcome_counts, read_label_requests
    from harness.records import DetectorSpec

    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    extra = tuple(DetectorSpec(n.strip()) for n in (args.detectors or "").split(",")
                  if n.strip())
    if extra:
        from harness.detectors import check_spec

        for spec in extra:
            problem = check_spec(spec)
            if problem:
                raise UsageError(f"--detectors {spec.name}: {problem}")
    requests = read_label_requests(args.file)
    lines = label_requests(requests, extra, args.concurrency)
    if getattr(args, "json", False):
        from harness.cli._output import print_json

        # One JSON document: the counts, and the labelled lines unless written to --out.
        if args.out != "-":
            Path(args.out).write_text("".join(json.dumps(line, ensure_ascii=False) + "\n"
                                              for line in lines), encoding="utf-8")
        print_json({"n": len(lines), "outcomes": outcome_counts(lines),
                    "out": None if args.out == "-" else args.out,
                    "lines": lines if args.out == "-" else None})
        return 0
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
    counts = ", ".join(f"{k} {v}" for k, v in outcome_counts(lines).items())
    print(f"labelled {len(lines)} output(s): {counts}"
          + ("" if args.out == "-" else f"; written to {args.out}"), file=sys.stderr)
    return 0
