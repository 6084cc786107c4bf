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
from pathlib import Path
from typing import Any, NoReturn, TextIO, cast

from harness import __version__
from harness.errors import EXIT_INFRA, EXIT_USAGE, HarnessError

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
    "harness.cli.merge",
    "harness.cli.calibrate",
    "harness.cli.label",
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand; with `command` (the first
    word of a command line, e.g. "run"), only that subcommand's module when it is one, so a
    command does not import the other fifteen (~0.05-0.1 s of a run's start-up)."""
    parser = _Parser(
        prog="harness",
        description="Sample a model with adversarial probes and decide, with confidence "
        "intervals, whether harmful-output rates stay below their thresholds.",
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: tuple[str, ...] = _COMMAND_MODULES
    if command is not None and f"harness.cli.{command}" in _COMMAND_MODULES:
        modules = (f"harness.cli.{command}",)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def _crash_log(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected exception to a private log file; its path.

    `$HARNESS_LOG_DIR`, else `$XDG_STATE_HOME/harness` (default `~/.local/state/harness`),
    else the temporary folder. Secrets are scrubbed from the text like everything written.
    """
    import tempfile
    import time
    import traceback

    from harness.privacy import scrub_secrets, secret_env_values

    text = "".join(traceback.format_exception(exc))
    text = scrub_secrets(text, secret_env_values())
    from harness.settings import environment

    env = environment()
    state = env.state_home or os.path.join(os.path.expanduser("~"), ".local", "state")
    dirs = [env.log_dir, os.path.join(state, "harness"),
            tempfile.gettempdir()]
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for d in dirs:
        if not d:
            continue
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
            path = Path(d) / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(f"harness {__version__}\nargv: {sys.argv!r}\n\n{text}")
            return path
        except OSError:
            continue
    return None


def _os_error_message(exc: OSError) -> str:
    """`cannot write /path: No space left on device` and the like, with a hint."""
    import errno

    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc)
    hint = {
        errno.ENOSPC: "free some space (or use --out on another disk) and resume the run",
        errno.EDQUOT: "free some space (or use --out on another disk) and resume the run",
        errno.EROFS: "the file system is read-only; choose a writable folder with --out",
        errno.EACCES: "check the folder's permissions, or choose another with --out",
        errno.EPERM: "check the folder's permissions, or choose another with --out",
    }.get(exc.errno or 0, "check the path and the disk")
    return f"file system error on{where}: {reason}; {hint}"


def _interrupted_message(exc: BaseException | None) -> str:
    from harness.errors import RunInterrupted

    if isinstance(exc, RunInterrupted):
        return f"harness: {exc}"
    return "harness: interrupted; partial results are kept (resume with --resume)"


class _ScrubbedStream:
    """stdout/stderr with the registered secret values (API keys, URL credentials) removed
    from every write, and control characters escaped: a key or an escape sequence an
    endpoint echoes in a model name never reaches the terminal or a CI log."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from harness.privacy import escape_controls, scrub_registered

        return self._stream.write(escape_controls(scrub_registered(text)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `harness` console script (see `_main`); its output is scrubbed of
    every secret value the command reads."""
    out, err = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, _ScrubbedStream(out))
    sys.stderr = cast(TextIO, _ScrubbedStream(err))
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = out, err


# long: one except ladder, so every way out maps to its documented exit code in one place
def _main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `harness` console script.

    Every way out has a documented exit code: the command's own (0-4), 2 for bad usage,
    4 for a file-system failure or any unexpected exception (one line on stderr, the
    traceback in a log file), 130 on Ctrl-C and 143 on SIGTERM (the run folder named).
    Never a traceback on the terminal and never a false 0, 1 or 3.
    """
    from harness import interrupts
    from harness.cli._output import ArgumentError, print_error, wants_json
    from harness.errors import RunInterrupted

    interrupts.install()
    args: argparse.Namespace | None = None
    try:
        # (not list(): importing the `list` subcommand binds harness.cli.list in this module)
        words = [*(sys.argv[1:] if argv is None else argv)]
        parser = build_parser(words[0] if words and not words[0].startswith("-") else None)
        args = parser.parse_args(words)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        code = int(args.func(args))
    except ArgumentError as exc:
        print_error(exc, wants_json(argv))
        return EXIT_USAGE
    except HarnessError as exc:
        from harness.settings import environment

        if environment().debug:
            import traceback

            traceback.print_exc()
        if interrupts.received() is not None:
            # A Ctrl-C that surfaced as another error (a cancelled request): still an interrupt.
            print(_interrupted_message(None), file=sys.stderr)
            return interrupts.exit_code()
        print_error(exc, bool(getattr(args, "json", False)))
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(_interrupted_message(exc), file=sys.stderr)
        return exc.exit_code if isinstance(exc, RunInterrupted) else interrupts.exit_code()
    except BrokenPipeError:
        # Output piped to `head` and the like; not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except SystemExit:
        raise  # argparse's own exit (2 on bad usage, 0 on --help)
    except OSError as exc:
        print_error(_Failure(_os_error_message(exc), "OSError"), wants_json(argv))
        return EXIT_INFRA
    except MemoryError:
        print_error(_Failure("out of memory; lower --concurrency or the suite's size",
                             "MemoryError"), wants_json(argv))
        return EXIT_INFRA
    except Exception as exc:  # the last line of defence of the exit codes
        if interrupts.received() is not None:
            print(_interrupted_message(None), file=sys.stderr)
            return interrupts.exit_code()
        log = _crash_log(exc)
        where = f"; the traceback is in {log}" if log else ""
        print(f"harness: internal error ({type(exc).__name__}: {_one_line(exc)}){where}. "
              "Please report it.", file=sys.stderr)
        if wants_json(argv):
            from harness.cli._output import print_json

            print_json({"error": {"type": "InternalError", "exit_code": EXIT_INFRA,
                                  "message": f"{type(exc).__name__}: {_one_line(exc)}{where}"}})
        return EXIT_INFRA
    if interrupts.received() is not None:
        # The command finished although a signal arrived (it was swallowed on the way):
        # report the interrupt, never the command's verdict.
        print(_interrupted_message(None), file=sys.stderr)
        return interrupts.exit_code()
    return code


class _Failure(HarnessError):
    """A failure that is not a HarnessError (file system, memory), reported the same way."""

    exit_code = EXIT_INFRA

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _one_line(exc: BaseException) -> str:
    from harness.privacy import scrub_secrets, secret_env_values

    text = " ".join(str(exc).split())
    text = scrub_secrets(text, secret_env_values())
    return text if len(text) <= 200 else text[:197] + "..."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
