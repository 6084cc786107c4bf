"""Run folders: the lock and interrupt guard while a process samples into one, and opening
finished or unfinished ones (`load_run`, `find_runs`, `records_frame`)."""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import RunInterrupted, RunWriteError, StoreError
from harness.records import SampleRecord
from harness.store._files import MANIFEST, SAMPLES, SUMMARY, read_json, write_json
from harness.store._read import iter_records

__all__ = ["LoadedRun", "RunLock", "find_runs", "load_run", "records_frame", "run_guard"]


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
