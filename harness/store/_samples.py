"""Writing samples.jsonl: the append-only batched writer, and the two repairs a resume
makes first (cut a torn last line; set aside the records that ended in error)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from harness.privacy import scrub_registered

__all__ = ["RETRIED", "SampleWriter", "repair_torn_tail", "set_aside_errors"]


def repair_torn_tail(path: Path) -> int:
    """Cut a partial last line (no trailing newline) off samples.jsonl; return bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return 0
        # Walk back to the last newline; everything after it is a torn record.
        block = 65536
        pos = size
        cut = 0
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                cut = start + idx + 1
                break
            pos = start
        fh.truncate(cut)
        return size - cut


RETRIED = "errors-retried.jsonl"
_ERROR_MARK = '"outcome":"error"'


def set_aside_errors(path: Path) -> int:
    """Move the records whose outcome is `error` out of samples.jsonl (appended to
    errors-retried.jsonl beside it, kept for the record); return how many.

    Done before a resume samples them again, so samples.jsonl keeps one record per sample
    for every reader. Crash-safe: the kept records go to a temporary file that replaces
    samples.jsonl atomically only after the set-aside records are on disk (a crash between
    the two leaves a record in both files, never in neither).
    """
    if not path.exists():
        return 0
    keep: list[str] = []
    errors: list[str] = []
    with path.open("r", encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            if _ERROR_MARK in line:
                try:
                    is_error = json.loads(line).get("outcome") == "error"
                except (ValueError, AttributeError):
                    is_error = False
                if is_error:
                    errors.append(line)
                    continue
            keep.append(line)
    if not errors:
        return 0
    fd = os.open(path.with_name(RETRIED), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
        out.writelines(errors)
        out.flush()
        os.fsync(out.fileno())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
        out.writelines(keep)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return len(errors)


class SampleWriter:
    """Append-only batched writer of samples.jsonl (one JSON object a line)."""

    def __init__(self, path: Path, batch_size: int = 256, max_delay_s: float = 0.25):
        self.path = path
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self._last_flush = time.monotonic()
        self._buffer: list[str] = []
        self._broken = False
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._fh: IO[str] = os.fdopen(fd, "a", encoding="utf-8")
        self.written = 0

    def add(self, record: Mapping[str, Any]) -> None:
        # The record was scrubbed by the privacy transform; the registered secret values
        # are removed once more from the line itself (cheap: a substring search per key).
        self._buffer.append(scrub_registered(json.dumps(record, ensure_ascii=False,
                                                        separators=(",", ":"), default=str)))
        # Flush by size or age, so a killed run loses at most a fraction of a second.
        if len(self._buffer) >= self.batch_size or \
                time.monotonic() - self._last_flush > self.max_delay_s:
            self.flush()

    def flush(self) -> None:
        """Write the buffered records as whole lines, then hand them to the OS.

        A failed write (disk full) breaks the writer: it never writes those records again
        (a retry after a partial write would put a second copy behind a torn line); what
        reached the file stays, a torn last line is cut by `--resume`, which samples the
        rest again.
        """
        if not self._buffer or self._broken:
            return
        try:
            self._fh.write("\n".join(self._buffer) + "\n")
            self._fh.flush()
        except OSError as exc:
            self._broken = True
            self._buffer.clear()
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
        self._last_flush = time.monotonic()
        self.written += len(self._buffer)
        self._buffer.clear()

    def close(self) -> None:
        if self._broken:
            with suppress(OSError):
                self._fh.close()
            return
        self.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
