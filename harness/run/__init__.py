"""Run orchestration: run_suite, resume_run and the one finish step that rescore shares.

The imperative shell around the engine. It resolves settings, builds the target, makes the
run folder and manifest (`_manifest`), asks the engine to sample (`_sample`: in one pass, or
in rounds for `--sequential`), then finishes (`_finish.finish_run`): analysis ->
summary.json, report.md, manifest, exit code. `harness.rescore` re-labels stored outputs and
ends in the same `finish_run`, as do `harness.merge` and `calibrate` (`_calibrate`: a
detector over human-labelled outputs, a run that samples nothing).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from harness.errors import UsageError
from harness.run._calibrate import CalibrationRun, calibrate, calibrate_run
from harness.run._finish import (
    FINISH_MODULES,
    check_calibration,
    finish_run,
    warm_finish_imports,
)
from harness.run._manifest import (
    build_manifest,
    resume_target_options,
    shard_from_manifest,
    stored_suite,
)
from harness.run._options import RunOptions, RunResult
from harness.run._sample import sample_run
from harness.settings import Overrides, apply_overrides, env_overrides
from harness.store import (
    MANIFEST,
    RunLock,
    load_run,
    make_private_dir,
    new_run_id,
    repair_torn_tail,
    run_guard,
    set_aside_errors,
    utc_now,
    write_json,
)
from harness.suites import Suite, load_suite
from harness.tally import Tally, tally_samples
from harness.targets import make_target
from harness.targets.base import BatchTarget, Target

__all__ = [
    "FINISH_MODULES",
    "CalibrationRun",
    "RunOptions",
    "RunResult",
    "calibrate",
    "calibrate_run",
    "check_calibration",
    "finish_run",
    "parse_as_of",
    "resolve_suite",
    "resume_run",
    "run_suite",
    "shard_from_manifest",
    "stored_suite",
    "today",
    "warm_finish_imports",
]


def _is_batch_spec(target: str | Target) -> bool:
    if isinstance(target, str):
        return target.strip().lower().partition(":")[0] in ("openai-batch", "batch-file")
    return isinstance(target, BatchTarget)


def resolve_suite(suite: Suite, options: RunOptions) -> Suite:
    """Apply environment then flag overrides to the suite's settings."""
    layers = [env_overrides()] if options.use_env else []
    layers.append(options.overrides)
    return apply_overrides(suite, *layers)


def _make_target(options: RunOptions, concurrency: int) -> Target:
    if not isinstance(options.target, str):
        return options.target
    return make_target(options.target, options=options.target_options, as_of=options.as_of,
                       epoch=options.epoch, concurrency=concurrency, rpm=options.rpm,
                       tpm=options.tpm, retry_policy=options.retry_policy)


def run_suite(suite: Suite | str | Path, options: RunOptions | None = None, *,
              target: str | Target | None = None) -> RunResult:
    """Run a suite against a target and write `out_dir/<run-id>/`. Blocking.

    `target` (a spec string or a `Target` object) replaces `options.target` when given.

    Raises InfrastructureError (exit 4) when the target cannot be used; the records already
    sampled stay on disk and `resume_run` continues from them.
    """
    options = options or RunOptions()
    if target is not None:
        options = replace(options, target=target)
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    suite = resolve_suite(suite, options)
    if options.sequential and _is_batch_spec(options.target):
        raise UsageError("--sequential cannot be combined with a batch target (openai-batch, "
                         "batch-file): its rounds would each wait for a batch job; run a "
                         "fixed plan, or use openai:<model> for a sequential run")
    if options.sequential and options.shard is not None:
        raise UsageError("--sequential cannot be combined with --shard: its stopping rule "
                         "needs every group's counts; run the shards with a fixed plan")
    if options.sequential and options.max_samples is not None and options.max_samples < 1:
        raise UsageError("--max-samples must be at least 1")
    if options.calibration is not None:
        check_calibration(suite, options.calibration)
    # The target first: a missing key or bad spec fails before any folder is made.
    target = _make_target(options, suite.concurrency or 16)
    started = utc_now()
    run_id = options.run_id or new_run_id(suite.name)
    run_dir = make_private_dir(Path(options.out_dir)) / run_id
    if run_dir.exists():
        raise UsageError(f"{run_dir} already exists; choose another --run-id or use --resume")
    make_private_dir(run_dir)
    tally = Tally()
    manifest = build_manifest(suite, options, target, run_id, started)
    write_json(run_dir / MANIFEST, manifest)
    with RunLock(run_dir), run_guard(run_dir, manifest):
        warming = warm_finish_imports()
        manifest = asyncio.run(sample_run(suite, options, target, run_dir, run_id, tally, None,
                                          manifest))
        warming.join()
        return finish_run(suite, run_dir, manifest, tally, options.calibration)


def resume_run(run_dir: str | Path, options: RunOptions | None = None, *,
               target: Target | None = None) -> RunResult:
    """Continue a killed or interrupted run: sample only what is missing, count nothing twice.

    The target is rebuilt from the manifest's spec, or is `target` when given (a run made
    with a `Target` object resumes with one). The plan (samples, temperatures, seed,
    confidence, target, `--sequential` and its budget) is the run's own, from its manifest;
    only the concurrency may change (`options.overrides.concurrency`), and the key's
    variable (`options.target_options["api_key_env"]`). Samples that ended in error are
    sampled again unless `options.retry_errors` is False (an outage must not leave a run at
    exit 4 for good).
    """
    run = load_run(run_dir)
    m = run.manifest
    suite = stored_suite(run.run_dir, m, "resume")
    s = m["settings"]
    base = options or RunOptions()
    if base.overrides.concurrency is not None:
        suite = replace(suite, concurrency=base.overrides.concurrency)
    options = replace(
        base, target=target or m["target"]["spec"], out_dir=run.run_dir.parent,
        target_options=resume_target_options(s, base.target_options, run.run_dir),
        as_of=date.fromisoformat(s["as_of"]) if s.get("as_of") else None,
        epoch=date.fromisoformat(s["epoch"]) if s.get("epoch") else None,
        overrides=Overrides(), use_env=False,
        sequential=bool(s.get("sequential", False)), max_samples=s.get("max_samples"),
        shard=shard_from_manifest(m))
    with RunLock(run.run_dir):
        removed = repair_torn_tail(run.samples_path)
        retried = set_aside_errors(run.samples_path) if base.retry_errors else 0
        tally, done = tally_samples(run.samples_path)
        m["resumed"] = [*m.get("resumed", []), {"at": utc_now(), "samples_present": len(done),
                                                 "torn_bytes_removed": removed,
                                                 "errors_retried": retried}]
        m["status"] = "running"
        made = _make_target(options, suite.concurrency or 16)
        with run_guard(run.run_dir, m):
            warming = warm_finish_imports()
            manifest = asyncio.run(sample_run(suite, options, made, run.run_dir, run.run_id,
                                              tally, done, m))
            warming.join()
            return finish_run(suite, run.run_dir, manifest, tally, options.calibration)


def parse_as_of(text: str | None) -> date | None:
    """Parse a YYYY-MM-DD flag value."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of {text!r} is not a date; use YYYY-MM-DD") from None


def today() -> date:
    """The current UTC date (the one place the engine reads the clock for dates)."""
    return datetime.now(UTC).date()
