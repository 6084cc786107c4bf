"""`harness merge RUN_DIR...`: join the shard runs of one plan into one run folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.run import add_inconclusive_option, print_result


def register(sub: Any) -> None:
    """Add the `merge` subcommand."""
    p = sub.add_parser(
        "merge", help="join the shard runs of one plan (`harness run --shard I/N`) into one run",
        description="Check that RUN_DIR... are every shard of one plan (same suite file, "
        "settings, seed, target and shard count; each shard once, finished, no sample missing "
        "or twice) and write them as one run folder DIR/<run-id>/ with the summary.json, "
        "reports and exit code the unsharded run would have. Exit codes as for `harness run`; "
        "2 when the folders are not the complete shards of one plan.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="the shard run folders")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="where the merged run folder goes (default: results)")
    p.add_argument("--run-id", default=None, help="the merged run's id (default: a new one)")
    p.add_argument("--json", action="store_true", help="print summary.json instead of the table")
    p.add_argument("--junit", default=None, metavar="FILE", help="also write JUnit XML here")
    add_inconclusive_option(p)
    p.set_defaults(func=cmd_merge)


def cmd_merge(args: argparse.Namespace) -> int:
    """Handler: call `harness.merge.merge_runs`, print like `harness run`, return its code."""
    from harness.merge import MergeOptions, merge_runs

    result = merge_runs(args.run_dirs, MergeOptions(out_dir=Path(args.out), run_id=args.run_id))
    print_result(result, args)
    return int(result.exit_code)
