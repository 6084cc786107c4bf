"""Command-line shell: parse, call one library function, map its result to an exit code.

Exit codes (stable contract): 0 holds / no regression / no alarm, 1 breached / regression /
alarm, 2 usage or input error, 3 inconclusive, 4 infrastructure error.

Each subcommand lives in its own module exposing `register(subparsers)`; the handler it
sets with `set_defaults(func=...)` takes the parsed namespace and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from harness import __version__
from harness.errors import EXIT_USAGE, HarnessError

# Subcommand modules, in help order. A module missing here is simply not offered.
_COMMAND_MODULES = (
    "harness.cli.run",
    "harness.cli.validate",
    "harness.cli.compare",
    "harness.cli.plan",
    "harness.cli.watch",
    "harness.cli.incident",
    "harness.cli.probes",
    "harness.cli.sim",
    "harness.cli.rescore",
    "harness.cli.calibrate",
    "harness.cli.review",
    "harness.cli.prune",
    "harness.cli.report",
    "harness.cli.list",
)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting on a bad command line, so `main` can report
    it like every other error (as JSON with --json), with the usage line on stderr."""

    def error(self, message: str) -> NoReturn:
        from harness.cli._output import ArgumentError

        self.print_usage(sys.stderr)
        raise ArgumentError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = _Parser(
        prog="harness",
        description="Sample a model with adversarial probes and decide, with confidence "
        "intervals, whether harmful-output rates stay below their thresholds.",
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `harness` console script."""
    from harness.cli._output import ArgumentError, print_error, wants_json

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except ArgumentError as exc:
        print_error(exc, wants_json(argv))
        return EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = int(args.func(args))
    except HarnessError as exc:
        if os.environ.get("HARNESS_DEBUG"):
            import traceback

            traceback.print_exc()
        print_error(exc, bool(getattr(args, "json", False)))
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted; partial results are kept (resume with --resume)",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped to `head` and the like; not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
