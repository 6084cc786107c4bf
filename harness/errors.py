"""One exception hierarchy for the whole harness.

Every error a user can cause says what is wrong and how to fix it; the CLI maps
each branch to a documented exit code and prints the message, never a traceback.

    HarnessError                      (base; exit 2 unless a subclass says otherwise)
    ├── UsageError                    bad flag or setting                       exit 2
    │   └── MissingKeyError           the API key's environment variable is not set
    ├── InputError                    a data file is wrong                      exit 2
    │   └── ValidationError           many located problems: file:line: field: message
    ├── StatsInputError (ValueError)  a statistics function got impossible numbers
    ├── RegistryError (KeyError)      unknown detector / mutator / profile, with did-you-mean
    ├── StoreError                    a results folder is missing, torn or foreign   exit 2
    └── InfrastructureError           the world failed us                      exit 4
        ├── RunWriteError             a run folder cannot be written (disk full, read-only)
        ├── TargetUnreachableError    connection refused, DNS, timeouts after retries
        │   └── TargetRetriesExhaustedError   (targets/retry.py) 429/5xx until retries ran out
        ├── TargetRequestError        (targets/retry.py) other 4xx: the request was rejected
        ├── PartialAnswerError        some answers of an n-sample request came, others failed
        ├── TargetAuthError           401 / 403: wrong or missing API key
        └── TargetNotFoundError       404: wrong model name or base URL

KeyboardInterrupt
    └── RunInterrupted                Ctrl-C / SIGTERM in a run, names its folder  exit 130/143

A run whose error share passes max_error_rate is not an exception: it finishes with outcome
"error" (exit 4) and keeps its summary and samples.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotation only: errors stays free of imports at run time
    from harness.records import Completion

EXIT_HOLDS = 0
EXIT_BREACHED = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3
EXIT_INFRA = 4


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""

    exit_code: int = EXIT_USAGE


class UsageError(HarnessError):
    """A flag, setting or argument is wrong."""


class MissingKeyError(UsageError):
    """The environment variable that should hold an endpoint's API key is not set.

    `variable` names it, so a caller with its own setting for it (a detector's
    `api_key_env`) can say which setting to change."""

    def __init__(self, message: str, variable: str):
        super().__init__(message)
        self.variable = variable


class InputError(HarnessError):
    """A suite, probe, label or results file cannot be used."""


@dataclass(frozen=True)
class Problem:
    """One located problem in a data file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}"


class ValidationError(InputError):
    """Every problem found in one or more data files, reported at once."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StatsInputError(HarnessError, ValueError):
    """A statistics function was given numbers that have no answer (n = 0, k > n, ...)."""


class RegistryError(HarnessError, KeyError):
    """An unknown name was looked up in a registry; the message suggests close matches."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        self.message = f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}."
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class StoreError(HarnessError):
    """A results folder is missing, unreadable or does not match what was asked."""


class RunInterrupted(KeyboardInterrupt):
    """A run was stopped by Ctrl-C (SIGINT) or SIGTERM; what was sampled is kept on disk.

    A KeyboardInterrupt (not a HarnessError), so code that cleans up on Ctrl-C (a watch
    marking its night pending) still sees one.

    `exit_code` is 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM), as shells do.
    """

    def __init__(self, run_dir: object, signum: int | None = None):
        from harness.interrupts import received

        self.run_dir = run_dir
        self.signum = signum or received() or 2
        self.exit_code = 128 + self.signum
        super().__init__(f"interrupted; the samples taken so far are kept in {run_dir}; "
                         f"continue with `harness run --resume {run_dir}`")


class InfrastructureError(HarnessError):
    """The target or the machine failed; not the model's behaviour."""

    exit_code = EXIT_INFRA


_WRITE_HINTS = {
    "ENOSPC": "free some space", "EDQUOT": "free some space (disk quota)",
    "EROFS": "make the file system writable (or copy the folder to a writable disk)",
    "EACCES": "fix the folder's permissions", "EPERM": "fix the folder's permissions",
    "EFBIG": "raise the file-size limit (ulimit -f)",
}


class RunWriteError(InfrastructureError):
    """A run folder could not be written (disk full, read-only, permissions) while sampling
    or finishing; the samples already written are kept and `--resume` continues them."""

    def __init__(self, run_dir: object, exc: OSError):
        import errno

        self.run_dir = run_dir
        self.errno = exc.errno
        name = errno.errorcode.get(exc.errno or 0, "")
        what = exc.filename or f"the run folder {run_dir}"
        hint = _WRITE_HINTS.get(name, "fix the disk")
        super().__init__(
            f"cannot write {what}: {exc.strerror or exc}; the samples written so far are kept "
            f"in {run_dir}: {hint}, then continue with harness run --resume {run_dir}")


class TargetUnreachableError(InfrastructureError):
    """No connection to the target after retries."""


class PartialAnswerError(InfrastructureError):
    """Some of the `n` answers a target was asked for arrived and the others failed.

    `completions` has one entry per answer asked for, None where it failed; the engine
    keeps every answer that came (never discards it) and records the others as errors
    with this message.
    """

    def __init__(self, message: str, completions: Sequence[Completion | None]) -> None:
        super().__init__(message)
        self.completions: tuple[Completion | None, ...] = tuple(completions)


class TargetAuthError(InfrastructureError):
    """The target rejected the credentials (401/403)."""


class TargetNotFoundError(InfrastructureError):
    """The target does not know the model or path (404)."""
