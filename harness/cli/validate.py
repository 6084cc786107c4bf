"""`harness validate FILE...`: check suites and probe files without running anything."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness.cli._output import add_json_option
from harness.errors import EXIT_USAGE


def register(sub: Any) -> None:
    p = sub.add_parser("validate", help="check suite and probe files without running a model",
                       description="Report every problem at once as file:line: field: message. "
                       "Exit 0 when all files are valid, 2 otherwise.")
    p.add_argument("files", nargs="+", metavar="FILE", help="suites (.yaml) or probes (.jsonl)")
    add_json_option(p)
    p.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.suites import validate_files

    problems = validate_files(args.files)
    if args.json:
        from harness.cli._output import error_document, print_json
        from harness.errors import ValidationError

        if problems:
            print_json(error_document(ValidationError(problems)))
            return EXIT_USAGE
        print_json({"ok": True, "files": list(args.files)})
        return 0
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {len({p.file for p in problems})} file(s)",
              file=sys.stderr)
        return EXIT_USAGE
    print(f"ok: {len(args.files)} file(s) valid")
    return 0
