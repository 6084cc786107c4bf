"""The imperative shell of watches: create one, append a nightly run, read its status.

Creating is `_setup.init_watch`, a night is `_nights.run_watch`; this module reads the status
and ingests production signals, and is where the package imports them from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from harness.errors import InputError
from harness.watch._nights import (
    NightInterrupted,
    run_watch,
    suite_path,
    today,
)
from harness.watch._setup import init_watch
from harness.watch.ingest import DailySignal
from harness.watch.model import WatchStatus, evaluate_watch
from harness.watch.production import with_signals
from harness.watch.store import (
    WatchLock,
    append_signals,
    load_definition,
    read_ledger,
    read_signals,
)

__all__ = [
    "IngestResult",
    "NightInterrupted",
    "ingest_signals",
    "init_watch",
    "run_watch",
    "suite_path",
    "today",
    "watch_status",
]


def watch_status(
    name: str,
    *,
    as_of: date | None = None,
    results: str | Path = "results",
    now: date | None = None,
) -> WatchStatus:
    """The watch's status at ``as_of`` (default: today, or the last run's date if later).

    Reads only: nothing under the watch folder is written.
    """
    definition, files = load_definition(name, results)
    entries = read_ledger(files)
    when = as_of or (now or today())
    if as_of is None and entries and max(e.as_of for e in entries) > when:
        when = max(e.as_of for e in entries)
    usable = [e for e in entries if e.as_of <= when]
    status = evaluate_watch(definition, usable, when)
    return with_signals(status, definition, read_signals(files))


@dataclass(frozen=True)
class IngestResult:
    """What `watch ingest` added."""

    added: tuple[DailySignal, ...]
    skipped: tuple[DailySignal, ...]
    """Days already ingested with the same numbers (re-ingesting a file is harmless)."""


def ingest_signals(name: str, path: str | Path, *, results: str | Path = "results"
                   ) -> IngestResult:
    """Read a production telemetry file (JSONL, CSV or OpenTelemetry JSON) into the watch.

    Every bad row is reported at once (ValidationError, `file:line: field: message`) and
    nothing is added; a day already ingested with other numbers is refused (the looks
    already taken on it would be rewritten).
    """
    from harness.errors import Problem, ValidationError
    from harness.watch.ingest import parse_signals

    _, files = load_definition(name, results)
    src = Path(path)
    try:
        text = src.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{src}: no such file; pass the telemetry export to ingest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{src}: cannot be read as UTF-8 text ({exc})") from None
    rows = parse_signals(text, str(src))
    with WatchLock(files):
        have = {r.day: r for r in read_signals(files)}
        added, skipped, problems = [], [], []
        for r in rows:
            old = have.get(r.day)
            if old is None:
                added.append(r)
            elif (old.traffic, old.reports, old.model_version, old.score_histogram) == (
                    r.traffic, r.reports, r.model_version, r.score_histogram):
                skipped.append(r)
            else:
                problems.append(Problem(
                    str(src), r.line, "date",
                    f"{r.day.isoformat()} was already ingested with other numbers (traffic "
                    f"{old.traffic}, reports {old.reports}, from {old.source or '?'}); a day is "
                    "ingested once. Drop this row, or remove that day from "
                    f"{files.signals} if the earlier export was wrong"))
        if problems:
            raise ValidationError(problems)
        if added:
            append_signals(files, added)
    return IngestResult(tuple(added), tuple(skipped))
