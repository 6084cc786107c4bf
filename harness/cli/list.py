"""`harness list probes|detectors|mutators|contexts|categories`: what there is to use."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness.errors import EXIT_HOLDS

KINDS = ("probes", "detectors", "mutators", "contexts", "categories")


def register(sub: Any) -> None:
    p = sub.add_parser("list", help="list probes, detectors, mutators, contexts or categories",
                       description="List what harness can use. probes and contexts read the "
                       "shipped library (or --suite SUITE's). Exit 0, 2 for a bad suite.")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--suite", default=None, metavar="SUITE",
                   help="probes/contexts of this suite instead of the shipped library")
    p.add_argument("--category", default=None, help="probes: only this category")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_list)


def list_items(kind: str, suite: str | None = None, category: str | None = None,
               ) -> list[dict[str, Any]]:
    """The rows `harness list KIND` prints (JSON-ready dicts)."""
    from harness.cli._listing import (
        category_rows,
        context_rows,
        detector_rows,
        mutator_rows,
        probe_rows,
    )

    if kind == "probes":
        return probe_rows(suite, category)
    if kind == "contexts":
        return context_rows(suite)
    if kind == "detectors":
        return detector_rows()
    if kind == "mutators":
        return mutator_rows()
    return category_rows()


def cmd_list(args: argparse.Namespace) -> int:
    from harness.cli._output import print_json

    rows = list_items(args.kind, args.suite, args.category)
    if args.json:
        print_json(rows)
        return EXIT_HOLDS
    if not rows:
        print(f"no {args.kind}", file=sys.stderr)
        return EXIT_HOLDS
    cols = list(rows[0])
    widths = {c: min(max(len(c), *(len(str(r.get(c, ""))) for r in rows)), 60) for c in cols}
    print("  ".join(f"{c:<{widths[c]}}" for c in cols).rstrip())
    for r in rows:
        print("  ".join(f"{str(r.get(c, ''))[:60]:<{widths[c]}}" for c in cols).rstrip())
    return EXIT_HOLDS
