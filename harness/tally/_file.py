"""samples.jsonl -> per-cell counts, fast, with the counts kept beside the file.

Reading samples.jsonl is most of what analysing a large stored run costs (a million records
are ~1 GB of JSON; json.loads per line, the shape check and the tally take ~17 µs a record).
`count_samples`:

1. uses the side file `samples.tally.json` when it is still the count of the file: it
   records how many bytes of samples.jsonl it covers, their CRC-32, the file's stat and a
   fingerprint of the counting code (so counts made by other code are never reused). An
   unchanged stat decides when the side file was written over a second after the file last
   changed; otherwise the CRC of the covered bytes must match (so a change of the same length
   in place is seen; `harness.tally._side`). When the file has grown since (a resume
   appended records), only the new lines are read;
2. else reads the lines with a typed msgspec decoder that takes only the fields the counts
   need and checks them as `harness.store.record_shape_problem` does, or more strictly;
3. and whenever the typed decoder refuses a line (a damaged line, or a record it is stricter
   about than the store) reads the whole file again with the store's reader
   (`iter_numbered_samples`), so damaged lines fail with the store's `file:line` message
   and odd but valid records count exactly as before. No side file is written then.

The side file is derived data: deleting it is always safe. It is written only for files of
at least `MIN_CACHED_BYTES` (smaller ones are read in milliseconds) and silently not at all
where the folder cannot be written (a read-only results folder).
"""

from __future__ import annotations

import hashlib
import types
import zlib
from contextlib import suppress
from dataclasses import fields
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import jsonlines

from harness.records import temperature_key
from harness.store import atomic_write, iter_numbered_samples, record_shape_problem
from harness.tally._counts import CellCounts, Tally, cell_key, request_of
from harness.tally._side import encode_side, file_stat, resume_from_side, side_file
from harness.tally._state import CountedSamples, Progress, SampleIndices

MIN_CACHED_BYTES = 4 << 20
"""Files smaller than this (~4,000 records) are read whole each time; no side file."""


def _add(counted: CountedSamples, d: dict[str, Any], index: int) -> None:
    """Count one record unless its (cell, index) was counted already (a sample present twice,
    which the engine never writes, is counted once)."""
    key = cell_key(d)
    idx = counted.indices.get(key)
    if idx is None:
        idx = counted.indices[key] = SampleIndices()
    if idx.add(index):
        counted.tally.add(d, key)


@cache
def counting_fingerprint() -> str:
    """A digest of the code that turns records into counts (bytecode, names and constants of
    `Tally.add` and its helpers, the counted fields): a side file made by other code (another
    harness or Python version, a changed rule) is never reused."""
    h = hashlib.sha256(repr([f.name for f in fields(CellCounts)]
                            + [f.name for f in fields(Tally)]).encode())

    def feed(code: types.CodeType) -> None:
        h.update(code.co_code)
        h.update(repr(code.co_names).encode())
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                feed(const)
            else:
                h.update(repr(const).encode())

    from harness.tally import _decode as typed

    for func in (Tally.add, CellCounts.add, CellCounts.add_tokens, cell_key, temperature_key,
                 request_of, typed.as_dict, typed.record, _add, SampleIndices.add):
        feed(func.__code__)
    return h.hexdigest()[:32]


class _Fallback(Exception):
    """The typed decoder refused a line: read the file with the store's reader instead."""


def _read_lines(fh: IO[bytes], progress: Progress, typed: ModuleType) -> bytes | None:
    """Count the lines from the handle's position on with the typed decoder (`typed`, the
    module `harness.tally._decode`); return a last line that has no newline (a torn write),
    which stays outside what the side file covers and is counted, or not, by
    `_count_torn_line`. Raises `_Fallback` at the first line the decoder refuses."""
    counted, record, refused = progress.counted, typed.record, (typed.DecodeError, typed.Refused)
    for raw in fh:
        if not raw.endswith(b"\n"):
            return raw
        if raw.strip():
            try:
                d, index = record(raw)
            except refused:
                raise _Fallback from None
            _add(counted, d, index)
        progress.covered_lines += 1
        progress.covered_bytes += len(raw)
        progress.crc32 = zlib.crc32(raw, progress.crc32)
    return None


def _count_torn_line(counted: CountedSamples, raw: bytes, typed: ModuleType) -> None:
    """A last line without its newline, read as the store's reader reads it: counted when it
    is a whole sample record, skipped otherwise (the torn tail of a crash)."""
    try:
        d, index = typed.record(raw)
    except (typed.DecodeError, typed.Refused):
        try:
            d = jsonlines.Reader([raw]).read(type=dict, skip_empty=True)
        except (jsonlines.InvalidLineError, EOFError, RecursionError):
            return
        if record_shape_problem(d) is not None:
            return
        index = d["sample_index"]
    _add(counted, d, index)


# --------------------------------------------------------------------------- reading


def _count_with_store_reader(path: Path) -> CountedSamples:
    """The store's own reader (messages with file:line for a damaged line)."""
    counted = CountedSamples(Tally(), {})
    for _, d in iter_numbered_samples(path):
        _add(counted, d, d["sample_index"])
    return counted


def count_samples(path: Path, *, min_cached_bytes: int = MIN_CACHED_BYTES) -> CountedSamples:
    """The counts of a samples.jsonl (module docstring: side file, typed reader, fallback).

    A torn last line (no newline) is counted when it is a whole record and skipped
    otherwise; a damaged line elsewhere raises StoreError naming file and line.
    """
    if not path.exists():
        return CountedSamples(Tally(), {})
    from harness.tally import _decode as typed  # msgspec: only when a file is read

    with path.open("rb") as fh:
        stat = file_stat(fh)
        progress = resume_from_side(fh, path, stat, counting_fingerprint())
        known = progress.covered_bytes if progress else -1
        progress = progress or Progress(CountedSamples(Tally(), {}))
        try:
            torn = _read_lines(fh, progress, typed)
        except _Fallback:
            return _count_with_store_reader(path)
    changed = progress.covered_bytes != known or not progress.settled
    if changed and progress.covered_bytes >= min_cached_bytes:
        progress.stat = stat
        with suppress(OSError):  # derived data: a read-only folder is read every time
            atomic_write(side_file(path), encode_side(progress, counting_fingerprint()))
    if torn is not None:
        _count_torn_line(progress.counted, torn, typed)
    return progress.counted


def tally_samples(path: Path) -> tuple[Tally, set[tuple[str, int]]]:
    """Stream a samples.jsonl into a Tally; also return the (cell, index) pairs present.

    A sample present twice (which the engine never writes) is counted once.
    """
    counted = count_samples(path)
    return counted.tally, counted.done()
