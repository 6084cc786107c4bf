"""What commands print for machines: JSON results and `{"error": {...}}` documents.

With `--json`, a command prints one JSON document on stdout, its result or, on failure, an
error object (`schemas/error.schema.json`): `type` (the exception class), `message`,
`exit_code` and, for validation errors, every located `problem`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from harness.errors import EXIT_USAGE, HarnessError, ValidationError


def print_json(obj: Any) -> None:
    """One JSON document on stdout (values JSON does not know, like paths, as strings)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def error_document(exc: BaseException, exit_code: int | None = None) -> dict[str, Any]:
    """The `{"error": {...}}` document of an exception."""
    code = exit_code if exit_code is not None else getattr(exc, "exit_code", EXIT_USAGE)
    err: dict[str, Any] = {"type": getattr(exc, "kind", None) or type(exc).__name__,
                           "message": str(exc).strip("'\""),
                           "exit_code": int(code)}
    if isinstance(exc, ValidationError):
        err["problems"] = [{"file": p.file, "line": p.line, "field": p.field,
                            "message": p.message} for p in exc.problems]
    return {"error": err}


def wants_json(argv: Sequence[str] | None) -> bool:
    """Whether the command line asked for JSON (read before or without a parsed namespace)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return "--json" in args[: args.index("--")] if "--" in args else "--json" in args


class ArgumentError(HarnessError):
    """argparse refused the command line (unknown flag, missing argument)."""


def print_error(exc: HarnessError | ArgumentError, json_output: bool) -> None:
    """Report a failure: one line on stderr, and with --json the error document on stdout."""
    print(f"harness: error: {str(exc).strip()}", file=sys.stderr)
    if json_output:
        print_json(error_document(exc))


def add_json_option(p: Any) -> None:
    """--json: the result as one JSON document on stdout, failures as {"error": {...}}."""
    p.add_argument("--json", action="store_true",
                   help='print the result as JSON (failures as {"error": {...}})')
