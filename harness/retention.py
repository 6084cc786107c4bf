"""Retention: delete run folders older than a cutoff (`harness prune --older-than 30d`).

A folder is a run folder when it holds a `manifest.json` with a `run_id`; its age is the
manifest's `finished` time, or `started` when it never finished. Anything else (calibration
files, unknown folders, symlinks, manifests without a readable date) is left alone and
reported as skipped: retention must never delete what it does not understand.

Watches: `RESULTS/watches/NAME/` holds `watch.json` and `ledger.jsonl` (counts only, no
text) and `runs/<run-id>/` (run folders with outputs). Without `include_watches` nothing
under `watches/` is touched; with it, old run folders under `watches/*/runs/` that the
watch does not reference are pruned (runs that ended in error, abandoned nights). Runs in a
watch's ledger or its pending night are never deleted (later nights compare against its
reference runs), nor are the definition and ledger; an unreadable ledger keeps every run.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `2w`, `90m`, `45s` -> timedelta (UsageError otherwise)."""
    m = _DURATION.match(text or "")
    if not m or int(m.group(1)) <= 0:
        raise UsageError(f"--older-than {text!r} is not a duration; use a positive number and a "
                         "unit: s, m (minutes), h, d or w, e.g. 30d, 12h, 2w")
    return timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RunAge:
    """A run folder and the time retention judges it by."""

    path: Path
    run_id: str
    when: datetime | None
    basis: str  # "finished" | "started" | reason it was skipped


def run_age(path: Path) -> RunAge | None:
    """The age basis of a run folder, or None when `path` is not a run folder."""
    manifest = path / "manifest.json"
    if path.is_symlink() or not path.is_dir() or not manifest.is_file():
        return None
    try:
        m = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return RunAge(path, path.name, None, "unreadable manifest")
    if not isinstance(m, dict) or not m.get("run_id"):
        return RunAge(path, path.name, None, "manifest has no run_id")
    for basis in ("finished", "started"):
        t = _parse_time(m.get(basis))
        if t is not None:
            return RunAge(path, str(m["run_id"]), t, basis)
    return RunAge(path, str(m["run_id"]), None, "manifest has no finished/started time")


def _candidates(root: Path, include_watches: bool) -> Iterator[Path]:
    if not root.is_dir():
        return
    for child in sorted(root.iterdir()):
        if child.name == "watches":
            continue
        yield child
    watches = root / "watches"
    if include_watches and watches.is_dir() and not watches.is_symlink():
        from harness.watch.store import referenced_runs

        for w in sorted(watches.iterdir()):
            runs = w / "runs"
            if runs.is_dir() and not runs.is_symlink():
                # A watch's ledger runs (its drift reference among them) are never pruned:
                # every later `watch run` compares against them.
                keep = referenced_runs(w)
                yield from (r for r in sorted(runs.iterdir()) if r.name not in keep)


@dataclass
class PruneResult:
    """What prune removed (or would remove), kept, and skipped."""

    cutoff: datetime
    removed: list[RunAge] = field(default_factory=list)
    kept: list[RunAge] = field(default_factory=list)
    skipped: list[RunAge] = field(default_factory=list)
    dry_run: bool = False


def prune(out_dir: str | Path, older_than: timedelta, *, now: datetime | None = None,
          dry_run: bool = False, include_watches: bool = False) -> PruneResult:
    """Delete run folders under `out_dir` whose finished (else started) time is before
    `now - older_than`."""
    root = Path(out_dir)
    if not root.is_dir():
        raise UsageError(f"--out {root}: no such results folder")
    now = now or datetime.now(UTC)
    cutoff = now - older_than
    result = PruneResult(cutoff=cutoff, dry_run=dry_run)
    for path in _candidates(root, include_watches):
        age = run_age(path)
        if age is None:
            continue
        if age.when is None:
            result.skipped.append(age)
        elif age.when < cutoff:
            if not dry_run:
                shutil.rmtree(path)
            result.removed.append(age)
        else:
            result.kept.append(age)
    return result


__all__ = ["PruneResult", "RunAge", "parse_duration", "prune", "run_age"]
