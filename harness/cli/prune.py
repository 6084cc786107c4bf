"""`harness prune --older-than 30d`: enforce retention of run folders."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli._output import add_json_option


def register(sub: Any) -> None:
    p = sub.add_parser(
        "prune", help="delete run folders older than a retention period",
        description="Delete run folders under --out whose manifest `finished` (or `started`) "
        "time is older than --older-than. Watch folders (RESULTS/watches/) are left alone "
        "unless --include-watches; their definitions and ledgers are always kept.")
    p.add_argument("--older-than", required=True, metavar="AGE",
                   help="retention period: a number and a unit s, m, h, d, w (e.g. 30d, 12h)")
    p.add_argument("--out", default="results", metavar="DIR", help="results folder")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed")
    p.add_argument("--include-watches", action="store_true",
                   help="also prune old run folders under RESULTS/watches/*/runs/")
    add_json_option(p)
    p.set_defaults(func=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    from harness.retention import parse_duration, prune

    result = prune(args.out, parse_duration(args.older_than), dry_run=args.dry_run,
                   include_watches=args.include_watches)
    if args.json:
        from harness.cli._output import print_json

        def one(r: object) -> dict[str, object]:
            when = getattr(r, "when", None)
            return {"path": str(getattr(r, "path", "")), "run_id": getattr(r, "run_id", None),
                    "when": when.isoformat() if when else None,
                    "basis": getattr(r, "basis", None)}

        print_json({"dry_run": args.dry_run, "cutoff": result.cutoff.isoformat(),
                    "removed": [one(r) for r in result.removed],
                    "kept": [one(r) for r in result.kept],
                    "skipped": [one(r) for r in result.skipped]})
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for r in result.removed:
        print(f"{verb} {r.path}  ({r.basis} {r.when:%Y-%m-%d %H:%M} UTC)" if r.when else
              f"{verb} {r.path}")
    for r in result.skipped:
        print(f"skipped {r.path}: {r.basis}")
    print(f"{verb} {len(result.removed)} run folder(s) older than "
          f"{result.cutoff:%Y-%m-%d %H:%M} UTC; kept {len(result.kept)}, "
          f"skipped {len(result.skipped)}")
    return 0
