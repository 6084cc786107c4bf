"""The side file samples.tally.json: the counts of a samples.jsonl kept beside it, with what
of the file they cover (bytes, lines, CRC-32, the file's stat) and the fingerprint of the
counting code that made them (`harness.tally._file` decides when it is written and used)."""

from __future__ import annotations

import os
import time
import zlib
from dataclasses import fields
from pathlib import Path
from typing import IO

from harness.tally._counts import CellCounts, Tally
from harness.tally._state import CountedSamples, Progress, SampleIndices

SIDE_SUFFIX = ".tally.json"
"""samples.jsonl -> samples.tally.json."""
_SIDE_KIND = "harness-sample-counts"
_CHUNK = 16 << 20

_SETTLED_NS = 1_000_000_000
"""A side file written at least this long after samples.jsonl last changed is trusted on the
file's size, mtime and inode alone: any later change moves the mtime past the side file's
own time, even with a coarse file-system clock. Otherwise the CRC-32 of the bytes decides."""


def side_file(samples: Path) -> Path:
    """Where the counts of `samples` are kept: samples.jsonl -> samples.tally.json."""
    return samples.with_name(samples.stem + SIDE_SUFFIX)


def file_stat(fh: IO[bytes]) -> tuple[int, int, int, int]:
    st = os.fstat(fh.fileno())
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


def encode_side(progress: Progress, fingerprint: str) -> str:
    import msgspec  # imported when a file is read anyway (the typed reader); 2x json's speed

    tally = progress.counted.tally
    cells = []
    for key, cc in tally.cells.items():
        row = {f.name: getattr(cc, f.name) for f in fields(CellCounts)}
        row["seen"] = sorted(cc.seen)
        row["indices"] = progress.counted.indices[key].ranges()
        cells.append([key, row])
    return msgspec.json.encode({
        "kind": _SIDE_KIND, "counting": fingerprint,
        "covers": {"bytes": progress.covered_bytes, "lines": progress.covered_lines,
                   "crc32": progress.crc32},
        "stat": list(progress.stat), "written_ns": time.time_ns(),
        "tally": {f.name: getattr(tally, f.name) for f in fields(Tally) if f.name != "cells"},
        "cells": cells}).decode()


def _decode_side(data: bytes, fingerprint: str) -> tuple[Progress, bool] | None:
    """The counts a side file holds and whether it is settled, or None when it is not a
    side file this code wrote."""
    import msgspec

    try:
        doc = msgspec.json.decode(data)
        if doc.get("kind") != _SIDE_KIND or doc.get("counting") != fingerprint:
            return None
        tally = Tally(**doc["tally"])
        indices: dict[str, SampleIndices] = {}
        for key, row in doc["cells"]:
            indices[key] = SampleIndices.from_ranges(row.pop("indices"))
            row["seen"] = set(row["seen"])
            tally.cells[key] = CellCounts(**row)
        covers, stat = doc["covers"], tuple(int(x) for x in doc["stat"])
        settled = int(doc["written_ns"]) - stat[1] >= _SETTLED_NS
        return Progress(CountedSamples(tally, indices), int(covers["bytes"]),
                         int(covers["lines"]), int(covers["crc32"]), stat), settled  # type: ignore[arg-type]
    except (msgspec.MsgspecError, AttributeError, KeyError, TypeError, ValueError, IndexError,
            RecursionError):
        return None


def _crc_of_prefix(fh: IO[bytes], size: int) -> int:
    crc, left = 0, size
    while left > 0:
        chunk = fh.read(min(_CHUNK, left))
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        left -= len(chunk)
    return crc if left == 0 else -1


def resume_from_side(fh: IO[bytes], samples: Path, stat: tuple[int, int, int, int],
                     fingerprint: str) -> Progress | None:
    """The side file's counts when they are the count of the first bytes of `samples`
    (whose handle is left just after them), else None (handle at the start).

    Unchanged since a settled side file (same size, mtime and inode): trusted without
    reading. Else the CRC-32 of the bytes it covers must match (a resume appended lines
    after them, or the side file was written too soon after the last change to tell).
    """
    try:
        found = _decode_side(side_file(samples).read_bytes(), fingerprint)
    except OSError:
        return None
    if found is None:
        return None
    progress, settled = found
    if settled and progress.stat == stat and progress.covered_bytes <= stat[0]:
        fh.seek(progress.covered_bytes)
        progress.settled = True
        return progress
    if _crc_of_prefix(fh, progress.covered_bytes) == progress.crc32:
        return progress
    fh.seek(0)
    return None
