"""Run a watch's night: one run of its pinned suite appended to the ledger (or resumed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from harness.errors import (
    InfrastructureError,
    InputError,
    RunInterrupted,
    StoreError,
    UsageError,
)
from harness.settings import ignored_environment
from harness.watch.canary import ask_canaries
from harness.watch.digest import RunDigest, compare_to_reference, digest_records
from harness.watch.model import (
    LedgerEntry,
    WatchDefinition,
    WatchStatus,
    evaluate_watch,
    segment_indices,
    stable_seed,
)
from harness.watch.production import with_signals
from harness.watch.store import (
    RUNS,
    Pending,
    WatchFiles,
    WatchLock,
    append_entry,
    clear_pending,
    load_definition,
    read_ledger,
    read_pending,
    read_signals,
    write_pending,
)


class NightInterrupted(RunInterrupted):
    """Ctrl-C / SIGTERM during a watch's night: the night stays pending (exit 130 / 143)."""

    def __init__(self, run_dir: object, signum: int | None, watch: str, night: date):
        super().__init__(run_dir, signum)
        self.args = (f"interrupted; the samples of night {night.isoformat()} are kept in "
                     f"{run_dir}; finish the night with `harness watch run {watch} --resume`",)

    def __str__(self) -> str:
        return str(self.args[0])


def utc_now() -> str:
    """Now, UTC, to the second (`2026-01-31T22:00:00Z`): when a watch or night was recorded."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def today() -> date:
    """The current UTC date (the shell's one read of the clock for dates)."""
    return datetime.now(UTC).date()


def suite_path(definition: WatchDefinition, files: WatchFiles) -> Path:
    """The watch's suite file: the stored absolute path, else the path relative to the watch
    folder (a moved checkout); an error naming the watch and both places when neither is."""
    stored = Path(definition.suite)
    candidates = [stored] if stored.is_absolute() else [files.dir / stored, stored]
    if definition.suite_relative:
        candidates.append(files.dir / definition.suite_relative)
    for c in candidates:
        if c.is_file():
            return c
    tried = ", ".join(dict.fromkeys(str(c) for c in candidates))
    raise InputError(f"watch {definition.name!r} ({files.definition}): its suite file is not "
                     f"at {tried}; restore it there, or edit \"suite\" in that watch.json")


def _load_digest(files: WatchFiles, entry: LedgerEntry) -> RunDigest | None:
    from harness.store import iter_records

    run_dir = files.dir / entry.run_dir
    if not (run_dir / "samples.jsonl").exists():
        return None
    return digest_records(iter_records(run_dir))


def _check_night(definition: WatchDefinition, entries: list[LedgerEntry], night: date,
                 now: date) -> tuple[date, bool]:
    """The period's start and whether ``night`` is a backfill; refuses nights it cannot take."""
    name = definition.name
    start = definition.start or (min(e.as_of for e in entries) if entries else night)
    end = start + timedelta(days=definition.days - 1)
    if night < start:
        raise UsageError(f"--as-of {night.isoformat()} is before the start {start.isoformat()} "
                         f"of watch {name!r}; pass a night from {start.isoformat()} to "
                         f"{end.isoformat()}")
    if night > end:
        raise UsageError(
            f"--as-of {night.isoformat()} is after the end {end.isoformat()} of watch {name!r} "
            f"({definition.days} nights from {start.isoformat()}); runs outside the period are "
            f"refused. To keep watching, start a new watch (`harness watch init {name}-2 ...`)")
    if night > now + timedelta(days=1):
        raise UsageError(f"--as-of {night.isoformat()} is in the future (today is "
                         f"{now.isoformat()}, UTC); a night is run on or after its date")
    same = [e for e in entries if e.as_of == night]
    if same:
        raise UsageError(
            f"watch {name!r} already has a run for {night.isoformat()} (run {same[0].run_id}, "
            f"recorded {same[0].recorded}); one run counts per night. Missing nights can be "
            "backfilled with --as-of")
    backfill = bool(entries) and night < max(e.as_of for e in entries)
    return start, backfill


def run_watch(
    name: str,
    *,
    as_of: date | None = None,
    results: str | Path = "results",
    progress: bool | None = False,
    resume: bool = False,
    now: date | None = None,
) -> tuple[LedgerEntry, WatchStatus]:
    """Run the watch's suite once for night ``as_of`` and append it to the ledger.

    One process at a time per watch (a lock on the watch folder), one run per night. A night
    before the last run is a backfill (recorded as such); nights outside the period, in the
    future or already run are refused. An interrupted night stays pending and
    ``resume=True`` finishes it. The sim's drifting profile gets the start as its epoch.
    Raises InfrastructureError when the run could not sample the target (nothing is
    appended; the night stays pending when some samples were kept).
    """
    definition, files = load_definition(name, results)
    with WatchLock(files):
        entries = read_ledger(files)
        pending = read_pending(files)
        if resume:
            if pending is None:
                raise UsageError(f"watch {name!r} has no interrupted night to resume; run "
                                 f"`harness watch run {name}` for a new night")
            if as_of is not None and as_of != pending.night:
                raise UsageError(f"the interrupted night of watch {name!r} is "
                                 f"{pending.night.isoformat()}, not {as_of.isoformat()}; "
                                 "drop --as-of to resume it")
            return _resume_night(definition, files, entries, pending, progress)
        night = as_of or (now or today())
        if pending is not None:
            raise UsageError(
                f"night {pending.night.isoformat()} of watch {name!r} was interrupted (run "
                f"{pending.run_id}); finish it with `harness watch run {name} --resume` "
                "before another night")
        start, backfill = _check_night(definition, entries, night, now or today())
        return _run_night(definition, files, entries, night, start, backfill, progress)


def _run_night(definition: WatchDefinition, files: WatchFiles, entries: list[LedgerEntry],
               night: date, start: date, backfill: bool, progress: bool | None
               ) -> tuple[LedgerEntry, WatchStatus]:
    from harness.run import RunOptions, run_suite
    from harness.settings import Overrides
    from harness.store import new_run_id
    from harness.suites import load_suite

    path = suite_path(definition, files)
    suite = load_suite(path)
    if definition.suite_sha256 and suite.sha256 != definition.suite_sha256:
        raise InputError(
            f"{path} changed since watch {definition.name!r} was created (sha256 differs); a "
            "watch measures one suite. Restore the file, or start a new watch for the new suite")
    run_id = new_run_id(suite.name)
    pending = Pending(night=night, run_id=run_id, run_dir=f"{RUNS}/{run_id}",
                      backfill=backfill, env_ignored=ignored_environment(), started=utc_now())
    options = RunOptions(
        target=definition.target, out_dir=files.runs,
        target_options=definition.target_options, run_id=run_id,
        # Pinned at init: the environment's HARNESS_* layer is left out (use_env=False).
        # A fresh, reproducible seed per night: with the suite's fixed seed every night would
        # repeat the same samples and the nights would not be independent looks.
        overrides=Overrides(samples=definition.samples, temperatures=definition.temperatures,
                            seed=stable_seed("watch", definition.name, night.isoformat())),
        as_of=night, epoch=start, progress=progress, use_env=False)
    write_pending(files, pending)
    try:
        result = run_suite(suite, options)
    except RunInterrupted as exc:
        raise NightInterrupted(exc.run_dir, exc.signum, definition.name, night) from None
    except InfrastructureError as exc:
        if not (files.dir / pending.run_dir / "samples.jsonl").exists():
            clear_pending(files)
            raise
        raise InfrastructureError(
            f"{exc}; night {night.isoformat()} of watch {definition.name!r} is kept: finish it "
            f"with `harness watch run {definition.name} --resume`") from None
    except BaseException:
        if not (files.dir / pending.run_dir).exists():
            clear_pending(files)
        raise
    return _append_night(definition, files, entries, pending, result, start, resumed=False)


def _resume_night(definition: WatchDefinition, files: WatchFiles, entries: list[LedgerEntry],
                  pending: Pending, progress: bool | None) -> tuple[LedgerEntry, WatchStatus]:
    from harness.run import RunOptions, resume_run

    run_dir = files.dir / pending.run_dir
    start = definition.start or (min(e.as_of for e in entries) if entries else pending.night)
    if not (run_dir / "manifest.json").exists():
        # Interrupted before the run folder was written: run the night afresh.
        clear_pending(files)
        _check_night(definition, entries, pending.night, pending.night)
        return _run_night(definition, files, entries, pending.night, start, pending.backfill,
                          progress)
    try:
        result = resume_run(run_dir, RunOptions(progress=progress))
    except RunInterrupted as exc:
        raise NightInterrupted(exc.run_dir, exc.signum, definition.name, pending.night
                               ) from None
    except InfrastructureError as exc:
        raise InfrastructureError(
            f"{exc}; night {pending.night.isoformat()} of watch {definition.name!r} is still "
            f"pending: try `harness watch run {definition.name} --resume` again") from None
    return _append_night(definition, files, entries, pending, result, start, resumed=True)


def _append_night(definition: WatchDefinition, files: WatchFiles, entries: list[LedgerEntry],
                  pending: Pending, result: Any, start: date, *, resumed: bool
                  ) -> tuple[LedgerEntry, WatchStatus]:
    from harness.store import iter_records, load_run

    name = definition.name
    night = pending.night
    if result.outcome == "error":
        clear_pending(files)
        raise InfrastructureError(
            f"run {result.run_id} ({result.run_dir}) ended in error (too many failed samples); "
            f"it was not added to watch {name!r}. Check the target and run `harness watch run "
            f"{name} --as-of {night.isoformat()}` again")
    digest = digest_records(iter_records(result.run_dir))
    if digest.n == 0:
        clear_pending(files)
        raise InfrastructureError(
            f"run {result.run_id} has no scored samples; it was not added to watch {name!r}")
    behaviour = None
    if definition.canaries:
        behaviour = _night_behaviour(definition, night, start)

    planned = int(load_run(result.run_dir).manifest.get("planned_samples") or 0)
    entry = LedgerEntry(
        seq=len(entries) + 1, run_id=result.run_id,
        run_dir=str(Path(result.run_dir).resolve().relative_to(files.dir.resolve())),
        as_of=night, recorded=utc_now(), outcome=result.outcome, n=digest.n,
        n_harmful=digest.n_harmful, n_blocked=digest.n_blocked, n_error=digest.n_error,
        n_refused=digest.n_refused, n_all=digest.n_all, n_planned=planned or digest.n,
        models=digest.models, fingerprints=digest.fingerprints,
        response_chars_median=digest.response_chars_median, backfill=pending.backfill,
        resumed=resumed, env_ignored=pending.env_ignored, behaviour=behaviour)
    # The reference of the drift comparisons is the first run of the current segment; a
    # run that changes the model's identity starts a new segment and is its own reference.
    segs = segment_indices([*entries, entry])
    seg_first = next(i for i, s in enumerate(segs) if s == segs[-1])
    if seg_first < len(entries):
        ref_entry = entries[seg_first]
        ref = _load_digest(files, ref_entry)
        if ref is None:
            raise StoreError(
                f"the reference run {ref_entry.run_id} of watch {name!r} is missing from "
                f"{files.dir / ref_entry.run_dir}; restore it (drift tests compare against it)")
        entry = replace(entry, reference_run_id=ref_entry.run_id,
                        tests=compare_to_reference(ref, digest))
    append_entry(files, entry)
    clear_pending(files)
    all_entries = [*entries, entry]
    status = evaluate_watch(definition, all_entries, max(e.as_of for e in all_entries))
    return entry, with_signals(status, definition, read_signals(files))


def _night_behaviour(definition: WatchDefinition, night: date, start: date) -> str:
    """The canary hash of the target as it is tonight (the sim: as of the night)."""
    from harness.targets import make_target

    target = make_target(definition.target, options=definition.target_options, as_of=night,
                         epoch=start, concurrency=1)
    return ask_canaries(target).behaviour
