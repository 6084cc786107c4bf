"""Watch state on disk: `RESULTS/watches/NAME/`.

    watch.json      the definition (written once by `watch init`)
    ledger.jsonl    one line per nightly run, append-only
    runs/<run-id>/  the runs themselves (the usual run folders)
    timeline.png    the latest timeline plot (written by `watch run`, or `status --plot`)
    report.html     the watch's report with the timeline embedded (`watch run`, `watch report`)
    signals.jsonl   production telemetry, one day a line (`watch ingest`)
    pending.json    the night being run (kept when interrupted; `watch run --resume`)
    .lock           held while a `watch run` works (one process per watch)

watch.json and ledger.jsonl hold settings, counts, dates, model names and test statistics
only (no prompts, outputs or keys), so they are safe to commit.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from harness.errors import InputError, StoreError, UsageError
from harness.store import atomic_write, make_private_dir
from harness.watch.ingest import DailySignal
from harness.watch.model import LedgerEntry, WatchDefinition

DEFINITION = "watch.json"
LEDGER = "ledger.jsonl"
RUNS = "runs"
TIMELINE = "timeline.png"
REPORT = "report.html"
PENDING = "pending.json"
SIGNALS = "signals.jsonl"
LOCK = ".lock"
# \Z, not $: `$` also matches before a trailing newline ("p-1\n" passed).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def watches_root(results: str | Path = "results") -> Path:
    """The folder holding every watch."""
    return Path(results) / "watches"


def check_name(name: str) -> str:
    """A watch name usable as a folder name."""
    if not _NAME.match(name) or len(name) > 100:
        raise UsageError(
            f"watch name {name!r} is not valid: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit (e.g. incident-42-patch)")
    return name


@dataclass(frozen=True)
class WatchFiles:
    """Paths of one watch."""

    dir: Path

    @property
    def definition(self) -> Path:
        return self.dir / DEFINITION

    @property
    def ledger(self) -> Path:
        return self.dir / LEDGER

    @property
    def runs(self) -> Path:
        return self.dir / RUNS

    @property
    def timeline(self) -> Path:
        return self.dir / TIMELINE

    @property
    def report(self) -> Path:
        return self.dir / REPORT

    @property
    def pending(self) -> Path:
        return self.dir / PENDING

    @property
    def signals(self) -> Path:
        return self.dir / SIGNALS


class WatchLock:
    """An exclusive lock on a watch while `watch run` works: two overlapping crons for one
    watch never both run (and never both count). `flock` on `NAME/.lock`, which the kernel
    drops when the process dies, so a killed run does not leave the watch locked."""

    def __init__(self, files: WatchFiles):
        self.files = files
        self._fd: int | None = None

    def __enter__(self) -> WatchLock:
        import fcntl

        fd = os.open(self.files.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreError(
                f"watch {self.files.dir.name!r} is being run by another process (pid {holder}); "
                "a second run for the same watch is refused. Wait for it to finish (check the "
                "cron schedule for overlapping jobs)") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True)
class Pending:
    """The night a `watch run` is working on (`pending.json`)."""

    night: date
    run_id: str
    run_dir: str
    backfill: bool = False
    env_ignored: Mapping[str, str] = field(default_factory=dict)
    started: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"night": self.night.isoformat(), "run_id": self.run_id,
                "run_dir": self.run_dir, "backfill": self.backfill,
                "env_ignored": dict(self.env_ignored), "started": self.started}


def read_pending(files: WatchFiles) -> Pending | None:
    """The interrupted night, if any."""
    if not files.pending.exists():
        return None
    try:
        d = json.loads(files.pending.read_text(encoding="utf-8"))
        return Pending(night=date.fromisoformat(d["night"]), run_id=str(d["run_id"]),
                       run_dir=str(d["run_dir"]), backfill=bool(d.get("backfill", False)),
                       env_ignored={str(k): str(v)
                                    for k, v in (d.get("env_ignored") or {}).items()},
                       started=str(d.get("started", "")))
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{files.pending}: unreadable ({exc}); if no `watch run` is going on, "
                         "delete it (the run it names stays under runs/ and is not counted)"
                         ) from None


def write_pending(files: WatchFiles, pending: Pending) -> None:
    """Record the night being run (atomic replace)."""
    atomic_write(files.pending, json.dumps(pending.to_dict(), indent=2) + "\n")


def clear_pending(files: WatchFiles) -> None:
    """The night is settled (appended, or nothing to keep)."""
    files.pending.unlink(missing_ok=True)


def referenced_runs(watch_dir: Path) -> set[str]:
    """Names of the run folders under ``watch_dir/runs`` that the watch's ledger or pending
    night references (`prune` keeps them: drift tests compare against reference runs)."""
    files = WatchFiles(watch_dir)
    names: set[str] = set()
    try:
        for e in read_ledger(files):
            names.add(Path(e.run_dir).name)
        pending = read_pending(files)
    except StoreError:
        # An unreadable ledger: keep every run rather than guess.
        return {p.name for p in files.runs.iterdir()} if files.runs.is_dir() else set()
    if pending is not None:
        names.add(Path(pending.run_dir).name)
    return names


def watch_files(name: str, results: str | Path = "results") -> WatchFiles:
    """Paths of the watch NAME under a results folder."""
    return WatchFiles(watches_root(results) / check_name(name))


def create_watch(definition: WatchDefinition, results: str | Path = "results") -> WatchFiles:
    """Write a new watch's definition; refuses to overwrite an existing watch."""
    files = watch_files(definition.name, results)
    if files.definition.exists():
        raise UsageError(
            f"watch {definition.name!r} already exists at {files.dir}; pick another NAME or "
            "delete that folder to start over")
    # Owner-only like run folders: a watch names its endpoint and holds every night's
    # verdict (folders harness creates are 0700, files 0600; existing folders keep their mode).
    make_private_dir(files.dir)
    atomic_write(files.definition, json.dumps(definition.to_dict(), indent=2) + "\n")
    os.close(os.open(files.ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    return files


def load_definition(name: str, results: str | Path = "results") -> tuple[WatchDefinition,
                                                                          WatchFiles]:
    """Read a watch's definition, with a fix in the message when it is missing or broken."""
    files = watch_files(name, results)
    if not files.definition.exists():
        known = ", ".join(list_watch_names(results)) or "none"
        raise UsageError(
            f"no watch named {name!r} under {watches_root(results)} (known: {known}); "
            f"create it with `harness watch init {name} --suite ... --target ... "
            "--max-rate ... --days ...`")
    try:
        raw = json.loads(files.definition.read_text(encoding="utf-8"))
        return WatchDefinition.from_dict(raw), files
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{files.definition}: not a valid watch definition ({exc}); "
                         "restore it from version control or re-create the watch") from None


def read_ledger(files: WatchFiles) -> list[LedgerEntry]:
    """Every ledger entry, oldest first. Torn lines (a crash mid-write) are ignored."""
    if not files.ledger.exists():
        return []
    entries: list[LedgerEntry] = []
    lines = files.ledger.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append(LedgerEntry.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            if not line.rstrip().endswith("}"):
                # A torn write from an interrupted append (the next append starts on a fresh
                # line, so it may sit mid-file): that run is simply not counted.
                continue
            raise StoreError(f"{files.ledger}:{lineno}: unreadable ledger line ({exc}); "
                             "restore the file from version control") from None
    return entries


def append_entry(files: WatchFiles, entry: LedgerEntry) -> None:
    """Append one line (one write call with O_APPEND, flushed and fsynced)."""
    line = json.dumps(entry.to_dict(), separators=(",", ":"), ensure_ascii=False) + "\n"
    data = line.encode("utf-8")
    # A torn tail left by a crash would glue onto this line: start on a fresh line.
    if files.ledger.exists() and files.ledger.stat().st_size > 0:
        with open(files.ledger, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                data = b"\n" + data
    fd = os.open(files.ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def list_watch_names(results: str | Path = "results") -> list[str]:
    """Names of the watches under a results folder."""
    root = watches_root(results)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / DEFINITION).is_file())


def read_signals(files: WatchFiles) -> list[DailySignal]:
    """The ingested production days, by date."""
    if not files.signals.exists():
        return []
    rows = []
    for lineno, line in enumerate(files.signals.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(DailySignal.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{files.signals}:{lineno}: unreadable ({exc}); restore the file "
                             "from version control or delete the line and ingest again"
                             ) from None
    return sorted(rows, key=lambda r: r.day)


def append_signals(files: WatchFiles, rows: list[DailySignal]) -> None:
    """Append days (one write call)."""
    data = "".join(json.dumps(r.to_dict(), separators=(",", ":")) + "\n" for r in rows)
    fd = os.open(files.signals, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
