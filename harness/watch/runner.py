"""The imperative shell of watches: create one, append a nightly run, read its status."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from harness.errors import InfrastructureError, StoreError, UsageError
from harness.stats.checks import check_confidence
from harness.watch.digest import RunDigest, compare_to_reference, digest_records
from harness.watch.model import (
    LedgerEntry,
    WatchDefinition,
    WatchStatus,
    evaluate_watch,
    segment_indices,
    stable_seed,
)
from harness.watch.store import (
    WatchFiles,
    append_entry,
    create_watch,
    load_definition,
    read_ledger,
)


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def today() -> date:
    """The current UTC date (the shell's one read of the clock for dates)."""
    return datetime.now(UTC).date()


def init_watch(
    name: str,
    *,
    suite: str | Path,
    target: str,
    max_rate: float,
    days: int,
    min_runs: int = 3,
    confidence_level: float = 0.95,
    start: date | None = None,
    samples: int | None = None,
    drift_alpha: float | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    results: str | Path = "results",
) -> WatchFiles:
    """Validate the settings and write `results/watches/NAME/watch.json` and an empty ledger."""
    from harness.suites import load_suite

    if not 0.0 < max_rate < 1.0:
        hint = f" (did you mean {max_rate / 100:g}?)" if 1.0 <= max_rate <= 100.0 else ""
        raise UsageError(f"--max-rate must be a rate strictly between 0 and 1, got "
                         f"{max_rate:g}{hint}")
    if days < 1:
        raise UsageError(f"--days must be at least 1, got {days}")
    if min_runs < 1:
        raise UsageError(f"--min-runs must be at least 1, got {min_runs}")
    if min_runs > days:
        raise UsageError(f"--min-runs {min_runs} is more than --days {days}; the watch could "
                         "never hold. Lower --min-runs or lengthen --days")
    try:
        check_confidence(confidence_level)
    except ValueError as exc:
        raise UsageError(f"--confidence: {exc}") from None
    if samples is not None and samples < 1:
        raise UsageError(f"--samples must be at least 1, got {samples}")
    if drift_alpha is not None and not 0.0 < drift_alpha < 1.0:
        raise UsageError(f"--drift-alpha must be in (0, 1), got {drift_alpha:g}")
    load_suite(suite)  # fail now, not on the first night, if the suite is broken
    _check_target(target)
    definition = WatchDefinition(
        name=name, suite=str(suite), target=target, max_rate=float(max_rate), days=int(days),
        min_runs=int(min_runs), confidence_level=float(confidence_level), start=start,
        drift_alpha=drift_alpha, samples=samples, base_url=base_url, api_key_env=api_key_env,
        created=_utc_now())
    return create_watch(definition, results)


def _check_target(spec: str) -> None:
    """Refuse an unknown target kind or sim profile at init (with did-you-mean)."""
    from harness.errors import RegistryError
    from harness.targets import parse_spec

    kind, arg = parse_spec(spec)
    if kind == "sim" and arg:
        from harness.sim.model import PROFILES

        if arg not in PROFILES:
            raise RegistryError("sim profile", arg, PROFILES)


def _load_digest(files: WatchFiles, entry: LedgerEntry) -> RunDigest | None:
    from harness.store import iter_records

    run_dir = files.dir / entry.run_dir
    if not (run_dir / "samples.jsonl").exists():
        return None
    return digest_records(iter_records(run_dir))


def run_watch(
    name: str,
    *,
    as_of: date | None = None,
    results: str | Path = "results",
    progress: bool | None = False,
) -> tuple[LedgerEntry, WatchStatus]:
    """Run the watch's suite once for night ``as_of`` and append it to the ledger.

    The sim's drifting profile is given the watch's start date as its epoch. Raises
    UsageError for a date before the start or not after the last run, and InfrastructureError
    when the run could not sample the target (nothing is appended then).
    """
    from harness.engine import RunOptions, run_suite
    from harness.settings import Overrides
    from harness.store import iter_records, load_run

    definition, files = load_definition(name, results)
    entries = read_ledger(files)
    night = as_of or today()
    start = definition.start or (entries[0].as_of if entries else night)
    if night < start:
        raise UsageError(f"--as-of {night.isoformat()} is before the watch's start "
                         f"{start.isoformat()}; pass a date on or after it")
    if entries and night <= entries[-1].as_of:
        raise UsageError(
            f"watch {name!r} already has a run for {entries[-1].as_of.isoformat()}; nightly "
            "runs are appended in date order, one a day: pass a later --as-of")
    options = RunOptions(
        target=definition.target, out_dir=files.runs, base_url=definition.base_url,
        api_key_env=definition.api_key_env,
        # A fresh, reproducible seed per night: with the suite's fixed seed every night would
        # repeat the same samples and the nights would not be independent looks.
        overrides=Overrides(samples=definition.samples,
                            seed=stable_seed("watch", definition.name, night.isoformat())),
        as_of=night, epoch=start, progress=progress)
    result = run_suite(definition.suite, options)
    if result.outcome == "error":
        raise InfrastructureError(
            f"run {result.run_id} ({result.run_dir}) ended in error (too many failed samples); "
            "it was not added to the watch. Check the target and run `harness watch run` again")
    digest = digest_records(iter_records(result.run_dir))
    if digest.n == 0:
        raise InfrastructureError(
            f"run {result.run_id} has no scored samples; it was not added to the watch")

    planned = int(load_run(result.run_dir).manifest.get("planned_samples") or 0)
    entry = LedgerEntry(
        seq=len(entries) + 1, run_id=result.run_id,
        run_dir=str(Path(result.run_dir).resolve().relative_to(files.dir.resolve())),
        as_of=night, recorded=_utc_now(), outcome=result.outcome, n=digest.n,
        n_harmful=digest.n_harmful, n_blocked=digest.n_blocked, n_error=digest.n_error,
        n_refused=digest.n_refused, n_all=digest.n_all, n_planned=planned or digest.n,
        models=digest.models, fingerprints=digest.fingerprints,
        response_chars_median=digest.response_chars_median)
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
        entry = _with_tests(entry, ref_entry.run_id, compare_to_reference(ref, digest))
    append_entry(files, entry)
    status = evaluate_watch(definition, [*entries, entry], night)
    return entry, status


def _with_tests(entry: LedgerEntry, ref_id: str, tests: dict[str, dict[str, object]]
                ) -> LedgerEntry:
    from dataclasses import replace

    return replace(entry, reference_run_id=ref_id, tests=tests)


def watch_status(
    name: str,
    *,
    as_of: date | None = None,
    results: str | Path = "results",
) -> WatchStatus:
    """The watch's status at ``as_of`` (default: today, or the last run's date if later)."""
    definition, files = load_definition(name, results)
    entries = read_ledger(files)
    when = as_of or today()
    if as_of is None and entries and entries[-1].as_of > when:
        when = entries[-1].as_of
    usable = [e for e in entries if e.as_of <= when]
    return evaluate_watch(definition, usable, when)
