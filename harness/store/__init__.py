"""Results on disk: `results/<run-id>/` with manifest.json, samples.jsonl, summary.json, report.md.

`samples.jsonl` is append-only: records are written in batches as samples finish, so a
killed run loses at most the batch in flight and `--resume` samples only what is missing.
A torn last line (the process died mid-write) is cut off on resume, never parsed as data.
Folders are created readable by their owner only (0700; files 0600): outputs can hold
harmful text and personal data.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import jsonlines

from harness.errors import RunInterrupted, RunWriteError, StoreError
from harness.privacy import scrub_registered
from harness.records import SampleRecord

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
    from harness.errors import UsageError

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


@contextmanager
def run_guard(run_dir: Path, manifest: MutableMapping[str, Any]) -> Iterator[None]:
    """Around the sampling of a run: an interrupt or crash leaves the manifest saying so.

    Ctrl-C or SIGTERM (KeyboardInterrupt) marks the manifest `status: interrupted` and
    raises `RunInterrupted` naming the folder (exit 130 / 143); any other exception marks it
    `status: failed` with the error and propagates. The samples already written stay, so
    `--resume` continues from them. Writing the manifest is best effort: on a full disk the
    original error is the one to report.
    """
    def mark(status: str, error: str | None = None) -> None:
        manifest["status"] = status
        if error is not None:
            from harness.privacy import scrub_secrets

            manifest["error"] = scrub_secrets(error)
        with suppress(OSError):
            write_json(run_dir / MANIFEST, manifest)

    try:
        yield
    except KeyboardInterrupt:
        mark("interrupted")
        raise RunInterrupted(run_dir) from None
    except OSError as exc:  # a full or read-only disk: one message naming the folder
        mark("failed", f"{type(exc).__name__}: {exc}")
        raise RunWriteError(run_dir, exc) from exc
    except BaseException as exc:
        mark("failed", f"{type(exc).__name__}: {exc}")
        raise


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


class RunLock:
    """An exclusive lock on a run folder while a process samples into it.

    `flock` on `RUN_DIR/.lock`: the kernel drops it when the process dies (even kill -9), so
    a crashed run can be resumed at once, but two processes never append to one
    samples.jsonl (a resume started while the run is still going would count samples twice).
    """

    def __init__(self, run_dir: Path):
        self.path = run_dir / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreError(f"{self.path.parent} is being written by another harness process "
                             f"(pid {holder}); wait for it to finish or stop it, then resume"
                             ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


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


_OUTCOMES = ("harmful", "safe", "unclear", "blocked", "error")
_RECORD_TYPES: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("run_id", str, "a string"), ("probe_id", str, "a string"), ("category", str, "a string"),
    ("context", str, "a string"), ("temperature", (int, float), "a number"),
    ("sample_index", int, "an integer"), ("seed", int, "an integer"),
    ("outcome", str, "a string"), ("time", str, "a string"),
)


def record_shape_problem(d: dict[str, Any]) -> str | None:
    """What makes `d` not a sample record that every reader can use, or None (pure).

    Checks the fields `SampleRecord.from_dict` and the tally need, with their types, so a
    hand-edited or foreign line fails here with its line number, not deep inside a reader.
    """
    for name, kind, what in _RECORD_TYPES:
        if name not in d:
            return f"not a sample record: the field {name!r} is missing"
        value = d[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"not a sample record: {name} is {value!r}, not {what}"
    if d["outcome"] not in _OUTCOMES:
        return f"not a sample record: outcome {d['outcome']!r} is not one of {', '.join(_OUTCOMES)}"
    messages = d.get("messages")
    if messages is not None and not (isinstance(messages, list) and all(
            isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in messages)):
        return "not a sample record: messages is not a list of {role, content} objects"
    detectors = d.get("detectors")
    if detectors is not None and not (isinstance(detectors, list) and all(
            isinstance(r, dict) and isinstance(r.get("name"), str) and "harmful" in r
            and isinstance(r.get("score"), (int, float)) for r in detectors)):
        return "not a sample record: detectors is not a list of {name, harmful, score} objects"
    return None


def _damaged(path: Path, lineno: int, what: str) -> StoreError:
    return StoreError(f"{path}:{lineno}: {what}; the file is damaged at that line: delete the "
                      "line (harness run --resume samples it again) or restore the file")


def iter_numbered_samples(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream (line number, record) from samples.jsonl.

    A torn last line (no trailing newline: a write cut short by a crash or a full disk,
    possibly in the middle of a character) is skipped, as `repair_torn_tail` would cut
    it. Any other line that is not UTF-8, not JSON or not a sample record
    (`record_shape_problem`) raises StoreError naming the file and line and how to fix it.
    """
    if not path.exists():
        return
    state = {"lineno": 0, "terminated": True}
    with path.open("rb") as fh:
        def lines() -> Iterator[bytes]:
            for raw in fh:
                state["lineno"] += 1
                state["terminated"] = raw.endswith(b"\n")
                yield raw

        reader = jsonlines.Reader(lines())
        try:
            for d in reader.iter(type=dict, skip_empty=True):
                problem = record_shape_problem(d)
                if problem is not None:
                    if not state["terminated"]:
                        return  # a torn tail that happens to parse
                    raise _damaged(path, state["lineno"], problem)
                yield state["lineno"], d
        except jsonlines.InvalidLineError as exc:
            if not state["terminated"]:
                return  # the torn tail of a crash
            reason = str(exc).removesuffix(f" (line {exc.lineno})")
            if "utf-8" in reason:
                reason = reason.replace("line is not valid utf-8", "not UTF-8 text")
            elif "requested type" in reason:
                reason = "not a sample record (a JSON value that is not an object)"
            else:
                reason = reason.replace("line contains invalid json", "not JSON")
            raise _damaged(path, state["lineno"], reason) from None
        except RecursionError:
            raise _damaged(path, state["lineno"],
                           "not a sample record (JSON nested too deeply to parse)") from None


def iter_sample_dicts(path: Path) -> Iterator[dict[str, Any]]:
    """Stream the records of samples.jsonl (a torn last line is skipped; a damaged line is
    a StoreError naming file and line, see `iter_numbered_samples`)."""
    for _, d in iter_numbered_samples(path):
        yield d


def iter_records(run_dir: Path) -> Iterator[SampleRecord]:
    """Stream SampleRecords of a run."""
    path = run_dir / SAMPLES
    for lineno, d in iter_numbered_samples(path):
        try:
            yield SampleRecord.from_dict(d)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _damaged(path, lineno, f"not a sample record ({type(exc).__name__}: "
                           f"{exc})") from None


@dataclass(frozen=True)
class LoadedRun:
    """A run folder read back: manifest, summary (if finished) and the samples path."""

    run_dir: Path
    manifest: dict[str, Any]
    summary: dict[str, Any] | None

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", self.run_dir.name))

    @property
    def samples_path(self) -> Path:
        return self.run_dir / SAMPLES

    def records(self) -> Iterator[SampleRecord]:
        return iter_records(self.run_dir)


def load_run(run_dir: str | Path) -> LoadedRun:
    """Open a run folder; raise StoreError with a fix if it is not one."""
    path = Path(run_dir)
    if not path.is_dir():
        raise StoreError(f"{path}: no such run folder; pass a folder under results/ "
                         "(see `ls results/`)")
    manifest = read_json(path / MANIFEST)
    summary = read_json(path / SUMMARY) if (path / SUMMARY).exists() else None
    return LoadedRun(path, manifest, summary)


def find_runs(out_dir: str | Path, suite_name: str | None = None) -> list[LoadedRun]:
    """Finished or unfinished runs under a results folder, oldest first."""
    root = Path(out_dir)
    runs: list[LoadedRun] = []
    if not root.is_dir():
        return runs
    for child in sorted(root.iterdir()):
        if (child / MANIFEST).is_file():
            try:
                run = load_run(child)
            except StoreError:
                continue
            if suite_name is None or run.manifest.get("suite", {}).get("name") == suite_name:
                runs.append(run)
    runs.sort(key=lambda r: str(r.manifest.get("started", "")))
    return runs


def records_frame(records: Iterator[SampleRecord] | list[SampleRecord]) -> Any:
    """One row a sample (see docs/architecture.md for the columns)."""
    import pandas as pd

    rows = []
    for r in records:
        row: dict[str, Any] = {
            "run_id": r.run_id, "probe_id": r.probe_id, "family": r.family,
            "parent_id": r.parent_id,
            "mutators": " > ".join(r.mutators), "category": r.category, "severity": r.severity,
            "context": r.context, "temperature": r.temperature, "sample_index": r.sample_index,
            "outcome": r.outcome, "harmful": r.outcome == "harmful", "model": r.model,
            "system_fingerprint": r.system_fingerprint,
            "response_chars": r.response_chars if r.response_chars is not None else (
                len(r.response) if r.response is not None else None),
            "finish_reason": r.finish_reason, "time": r.time,
        }
        for d in r.detectors:
            row[f"score_{d.name}"] = d.score
        rows.append(row)
    return pd.DataFrame(rows)
