"""Files of a run folder: their names, owner-only folders, the one atomic write, JSON."""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import StoreError, UsageError
from harness.privacy import scrub_registered

__all__ = ["MANIFEST", "REPORT", "SAMPLES", "SCHEMA_VERSION", "SUMMARY", "atomic_write",
           "make_private_dir", "new_run_id", "read_json", "utc_now", "write_json",
           "write_private_text"]

MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"
SUMMARY = "summary.json"
REPORT = "report.md"
SCHEMA_VERSION = 1


def utc_now() -> str:
    """ISO-8601 UTC timestamp with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id(suite_name: str, now: datetime | None = None) -> str:
    """A sortable, unique run id: `20261122-161500-demo-3fa9c1`."""
    now = now or datetime.now(UTC)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in suite_name)[:40]
    return f"{now:%Y%m%d-%H%M%S}-{safe}-{secrets.token_hex(3)}"


def make_private_dir(path: Path) -> Path:
    """Create a directory (and missing parents) readable by its owner only (0700).

    Folders that already exist keep their mode: `--out .` or a shared 1777 folder must not be
    locked or lose its sticky bit. A path that exists but is not a folder is a UsageError.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path} exists and is not a folder; choose a folder (e.g. --out "
                         "results)")
    missing: list[Path] = []
    cur = path
    while not cur.exists() and cur != cur.parent:
        missing.append(cur)
        cur = cur.parent
    if cur.exists() and not cur.is_dir():
        raise UsageError(f"{cur} is a file, so {path} cannot be created; choose another folder")
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by another process: its mode is its own
        os.chmod(d, 0o700)  # mkdir's mode is filtered by the umask
    return path


def atomic_write(path: Path, text: str, *, private: bool = True) -> None:
    """Write a text file atomically (temp file, fsync, rename): readers see the old file or
    the new one, never half of one. The one atomic write of the project.

    `private` (default) makes the file owner-only (0600); otherwise the umask decides, as for
    files people share (suite YAML, watch definitions). Registered secret values (API keys,
    URL credentials: `harness.privacy`) are removed first, whatever the text is: no key
    reaches disk by value.
    """
    text = scrub_registered(text)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_private_text(path: Path, text: str) -> None:
    """Write a file atomically with owner-only permissions (`atomic_write`)."""
    atomic_write(path, text, private=True)


def write_json(path: Path, obj: Any) -> None:
    """Pretty JSON, atomically, owner-only."""
    write_private_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file or raise StoreError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{path}: not found; is this a run folder made by `harness run`?") \
            from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: not valid JSON ({exc}); the file is damaged") from None
