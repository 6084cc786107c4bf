"""Run orchestration: run_suite, resume_run and the one finish step that rescore shares.

The imperative shell around the engine. It resolves settings, builds the target, makes the
run folder and manifest, asks the engine to sample (in one pass, or in rounds for
`--sequential`), then finishes: analysis -> summary.json, report.md, manifest, exit code.
`harness.rescore` re-labels stored outputs and ends in the same `finish_run`.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from harness import __version__
from harness.analysis import sequential_decision, summarize
from harness.calibration import check_usable, corrected_rates, load_calibration
from harness.detectors import DetectorPool, specs_for
from harness.engine import Progress, batch_items, execute
from harness.errors import StoreError, UsageError
from harness.gating import EXIT_CODES
from harness.plan import MAX_BATCH_N, Cell, Shard, plan_cells, plan_work, shard_cells
from harness.privacy import SECRET, escape_controls, record_transform, scrub_url
from harness.report import render_markdown
from harness.settings import Overrides, apply_overrides, env_overrides
from harness.store import (
    MANIFEST,
    REPORT,
    SAMPLES,
    SCHEMA_VERSION,
    SUMMARY,
    RunLock,
    SampleWriter,
    load_run,
    make_private_dir,
    new_run_id,
    repair_torn_tail,
    run_guard,
    set_aside_errors,
    utc_now,
    write_json,
    write_private_text,
)
from harness.suites import Price, Suite, load_suite
from harness.tally import Tally, tally_samples
from harness.targets import make_target, target_spec
from harness.targets.base import BatchTarget, Target

__all__ = [
    "RunOptions",
    "RunResult",
    "check_calibration",
    "finish_run",
    "parse_as_of",
    "resolve_suite",
    "resume_run",
    "run_suite",
    "shard_from_manifest",
    "stored_suite",
    "today",
]

# --------------------------------------------------------------------------- options/results


@dataclass(frozen=True)
class RunOptions:
    """How to run a suite. `overrides` are flag values; environment HARNESS_* sit below them.

    `target` is a spec string (`sim:patched`, `openai:<model>`; see `harness.targets`) or a
    `Target` object, used as given. `base_url` and `api_key_env` are target options, for kinds
    that take them (openai).
    """

    target: str | Target = "sim"
    out_dir: Path = Path("results")
    base_url: str | None = None
    api_key_env: str | None = None
    overrides: Overrides = field(default_factory=Overrides)
    as_of: date | None = None
    epoch: date | None = None
    run_id: str | None = None
    progress: bool | None = None
    sequential: bool = False
    max_samples: int | None = None
    use_env: bool = True
    calibration: Path | None = None
    retry_errors: bool = True
    """On resume, sample again the samples that ended in error (their records are set aside
    in errors-retried.jsonl); False keeps them as they are."""
    shard: Shard | None = None
    """Sample only this part of the plan (`--shard I/N`); `harness merge` joins the parts."""
    rpm: float | None = None
    """Client-side budget of requests per minute for targets that send requests (`--rpm`)."""
    tpm: float | None = None
    """Client-side budget of tokens per minute (`--tpm`)."""


@dataclass(frozen=True)
class RunResult:
    """What a finished run decided, and where its files are."""

    run_id: str
    run_dir: Path
    outcome: str
    exit_code: int
    summary: dict[str, Any]


# --------------------------------------------------------------------------- the run


def _manifest(suite: Suite, options: RunOptions, target: Target, run_id: str,
              started: str) -> dict[str, Any]:
    n_cells = (len(shard_cells(plan_cells(suite), options.shard)) if options.shard
               else len(suite.probes) * len(suite.contexts) * len(suite.temperatures))
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "harness_version": __version__,
        "suite": {
            "name": suite.name,
            "path": str(suite.path.resolve()) if suite.path else None,
            "sha256": suite.sha256,
            "deployment": suite.deployment,
            "incident": dict(suite.incident) if suite.incident else None,
        },
        "target": {"spec": target_spec(options.target), **target.describe()},
        "settings": {
            "samples": suite.samples,
            "temperatures": list(suite.temperatures),
            "seed": suite.seed,
            "concurrency": suite.concurrency,
            "confidence_level": suite.confidence_level,
            "max_error_rate": suite.max_error_rate,
            "max_tokens": suite.max_tokens,
            "max_response_chars": suite.max_response_chars,
            "max_rate": dict(suite.max_rate),
            "gate": {"method": suite.gate.method, "cluster": suite.gate.cluster,
                     "multiplicity": suite.gate.multiplicity},
            "storage": suite.storage,
            "forensic_capture": suite.forensic_capture,
            "contexts": [c.name for c in suite.contexts],
            "n_probes": len(suite.probes),
            "as_of": options.as_of.isoformat() if options.as_of else None,
            "epoch": options.epoch.isoformat() if options.epoch else None,
            "sequential": options.sequential,
            "max_samples": options.max_samples,
            "base_url": _scrub(options.base_url),
            "api_key_env": options.api_key_env,
            "price": suite.price.to_dict() if suite.price else None,
        },
        "planned_samples": n_cells * suite.samples,
        "started": started,
        "finished": None,
        "status": "running",
    }
    if options.shard is not None:
        manifest["shard"] = {"index": options.shard.index, "count": options.shard.count,
                             "cells": n_cells, "method": "sha256(cell key) mod count"}
    return manifest


def shard_from_manifest(manifest: dict[str, Any]) -> Shard | None:
    """The `--shard` a run was made with (None for a whole-plan run)."""
    shard = manifest.get("shard")
    return Shard(int(shard["index"]), int(shard["count"])) if shard else None


def _is_batch_spec(target: str | Target) -> bool:
    if isinstance(target, str):
        return target.strip().lower().partition(":")[0] in ("openai-batch", "batch-file")
    return isinstance(target, BatchTarget)


def _scrub(text: str | None) -> str | None:
    """A URL setting with its credentials (user:pass@, ?key=...) removed."""
    return scrub_url(text)


def resolve_suite(suite: Suite, options: RunOptions) -> Suite:
    """Apply environment then flag overrides to the suite's settings."""
    layers = [env_overrides()] if options.use_env else []
    layers.append(options.overrides)
    return apply_overrides(suite, *layers)


def _make_target(options: RunOptions, concurrency: int) -> Target:
    if not isinstance(options.target, str):
        return options.target
    return make_target(options.target, base_url=options.base_url,
                       api_key_env=options.api_key_env, as_of=options.as_of,
                       epoch=options.epoch, concurrency=concurrency, rpm=options.rpm,
                       tpm=options.tpm)


async def _run_async(suite: Suite, options: RunOptions, target: Target, run_dir: Path,
                     run_id: str, tally: Tally, done: set[tuple[str, int]] | None,
                     manifest: dict[str, Any]) -> dict[str, Any]:
    concurrency = suite.concurrency or 16
    manifest["target"] = {"spec": target_spec(options.target), **target.describe()}
    write_json(run_dir / MANIFEST, manifest)
    all_cells = plan_cells(suite)
    cells = shard_cells(all_cells, options.shard)
    # Batches as in the unsharded run: only the plan's first cell has its first request split.
    split_first = not cells or cells[0].key == all_cells[0].key
    def batch_n() -> int:
        return MAX_BATCH_N if target.supports_n else 1

    # Storage mode, forensic capture and secret scrubbing (always: keys never reach disk).
    transform = record_transform(suite.storage, suite.forensic_capture, suite.seed)
    samples_used = 0
    sequential_info: dict[str, Any] | None = None
    pool = DetectorPool()  # this run's detectors, closed with it
    t0 = time.monotonic()
    try:
        with SampleWriter(run_dir / SAMPLES) as writer:
            if not options.sequential:
                if isinstance(target, BatchTarget):
                    # The whole plan as batch jobs first; the engine then labels the answers.
                    await target.prepare(
                        batch_items(suite, plan_work(cells, suite.samples, batch_n, done),
                                    split_first),
                        run_dir, _notifier(options.progress))
                total = len(cells) * suite.samples - (len(done) if done else 0)
                progress = Progress(total, options.progress)
                items = plan_work(cells, suite.samples, batch_n, done)
                runner = await execute(suite, target, items, writer, tally, run_id, progress,
                                       transform, concurrency, pool, split_first)
                progress.close()
                if isinstance(target, BatchTarget):
                    # Every answer was asked for (or the engine stopped on them): a resume
                    # asks a new batch for what is missing or in error.
                    writer.flush()
                    target.consumed()
                if runner.fatal is not None:
                    raise runner.fatal
            else:
                sequential_info = await _run_sequential(
                    suite, options, target, cells, batch_n, writer, tally, run_id, transform,
                    concurrency, done, pool)
            samples_used = writer.written
    finally:
        await target.aclose()
        await pool.aclose()
    manifest["target"] = {"spec": target_spec(options.target), **target.describe()}
    if sequential_info is not None:
        manifest["sequential"] = sequential_info
    manifest["samples_written_this_session"] = samples_used
    manifest["sampling_seconds"] = round(time.monotonic() - t0, 3)
    return manifest


def _notifier(progress: bool | None) -> Callable[[str], None]:
    """Status lines of a batch job on stderr (none with --quiet)."""
    if progress is False:
        return lambda line: None
    return lambda line: print(f"harness: {escape_controls(line)}", file=sys.stderr, flush=True)


async def _run_sequential(suite: Suite, options: RunOptions, target: Target, cells: list[Cell],
                          batch_n: Callable[[], int], writer: SampleWriter, tally: Tally,
                          run_id: str,
                          transform: Any, concurrency: int,
                          done: set[tuple[str, int]] | None, pool: DetectorPool,
                          ) -> dict[str, Any]:
    """Sample in rounds; stop when the anytime-valid bounds settle every gated group."""
    fixed_plan = len(cells) * suite.samples
    budget = options.max_samples or 2 * fixed_plan
    per_round = max(1, math.ceil(suite.samples / 4))
    # The looks are fixed before sampling: "below" spends its alpha over exactly these.
    planned_looks = max(1, math.ceil(budget / max(len(cells) * per_round, 1)))
    rounds = 0
    index = 0
    decision: dict[str, Any] = {"stop": False, "verdicts": {}}
    previous: Any = None
    stopped_early = False
    progress = Progress(budget, options.progress)
    while True:
        round_samples = min(per_round, (budget - tally.n) // max(len(cells), 1))
        if round_samples <= 0:
            # Budget spent: the last decision stands, marked as such.
            decision, previous = sequential_decision(tally, suite, previous,
                                                     budget_exhausted=True,
                                                     look=max(rounds, 1),
                                                     planned_looks=planned_looks)
            break
        items = plan_work(cells, round_samples, batch_n, done, start_index=index)
        runner = await execute(suite, target, items, writer, tally, run_id, progress, transform,
                               concurrency, pool)
        if runner.fatal is not None:
            progress.close()
            raise runner.fatal
        index += round_samples
        rounds += 1
        decision, previous = sequential_decision(tally, suite, previous, look=rounds,
                                                 planned_looks=planned_looks)
        # Stop when every gate is settled, or as soon as one is settled "above": the run is
        # then breached whatever the others say.
        if decision["stop"] or decision.get("verdict") == "above":
            stopped_early = True
            break
    progress.close()
    used = tally.n
    return {
        "rounds": rounds,
        "samples_per_cell_per_round": per_round,
        "planned_looks": planned_looks,
        "samples_used": used,
        "fixed_plan_samples": fixed_plan,
        "samples_saved": max(fixed_plan - used, 0),
        "budget": budget,
        "stopped_early": stopped_early,
        "reason": decision.get("reason"),
        "method": decision.get("method"),
        "verdicts": decision.get("verdicts", {}),
    }


def finish_run(suite: Suite, run_dir: Path, manifest: dict[str, Any], tally: Tally,
               calibration: Path | None = None) -> RunResult:
    """The one finish step of every run (sampled, resumed or rescored): analyse the tally,
    write summary.json, report.md and the finished manifest, and map the outcome to an exit
    code. A calibration adds judge-corrected rates beside the raw ones."""
    manifest["finished"] = utc_now()
    run_summary = summarize(tally, suite, manifest)
    if calibration is not None:
        run_summary = replace(run_summary,
                              corrected=corrected_rates(run_summary.to_dict(), calibration))
    summary = run_summary.to_dict()
    manifest["tokens"] = {**summary["tokens"], "by_category": {
        g.key: {"in": g.tokens_in, "out": g.tokens_out} for g in run_summary.groups
        if g.by == "category"}}
    manifest["status"] = "finished"
    manifest["outcome"] = run_summary.outcome
    write_json(run_dir / MANIFEST, manifest)
    write_json(run_dir / SUMMARY, summary)
    write_private_text(run_dir / REPORT, escape_controls(render_markdown(summary)))
    from harness.html_report import write_html_report

    write_html_report(run_dir, summary, tally.cells.values())
    return RunResult(manifest["run_id"], run_dir, run_summary.outcome,
                     EXIT_CODES[run_summary.outcome], summary)


def check_calibration(suite: Suite, path: Path) -> None:
    """Fail before sampling when a calibration cannot apply to this suite's detectors."""
    doc = load_calibration(path)
    check_usable(doc, str(path))
    name = doc.get("detector_name")
    used = {spec.name for p in suite.probes for spec in specs_for(p, suite.detectors)}
    if name not in used:
        raise UsageError(f"--calibration {path} is for detector {name!r}, but this suite labels "
                         f"with {', '.join(sorted(used))}; add it to the suite's detectors or "
                         "use a calibration of one of these")


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
    manifest = _manifest(suite, options, target, run_id, started)
    write_json(run_dir / MANIFEST, manifest)
    with RunLock(run_dir), run_guard(run_dir, manifest):
        manifest = asyncio.run(_run_async(suite, options, target, run_dir, run_id, tally, None,
                                          manifest))
        return finish_run(suite, run_dir, manifest, tally, options.calibration)


def _resume_base_url(stored: str | None, given: str | None, run_dir: Path) -> str | None:
    """The base URL a resume uses: the stored one, or, when its credentials were not stored
    (`?key=[secret]`), the `--base-url` given again, which must be the same URL."""
    if given is None:
        if stored is not None and SECRET in stored:
            raise UsageError(f"{run_dir} was sampled from {stored}, whose credentials were not "
                             "stored; pass the same --base-url again to resume")
        return stored
    if scrub_url(given) != stored:
        raise UsageError(f"--base-url {scrub_url(given)!r} is not the endpoint {run_dir} was "
                         f"sampled from ({stored!r}); resume against the same endpoint or start "
                         "a new run")
    return given


def stored_suite(run_dir: Path, manifest: dict[str, Any], action: str) -> Suite:
    """The suite a run was sampled with: its file (unchanged since, by sha256) with the
    plan settings recorded in its manifest. `action` names what needs it, for the message."""
    suite_path = manifest.get("suite", {}).get("path")
    if not suite_path or not Path(suite_path).exists():
        raise StoreError(f"{run_dir}: its suite file {suite_path!r} is gone; restore it to "
                         f"{action}")
    suite = load_suite(suite_path)
    if suite.sha256 != manifest["suite"]["sha256"]:
        raise StoreError(f"{suite_path} changed since run {manifest.get('run_id')} started "
                         f"(sha256 differs); to {action} would mix two suites. Start a new run "
                         "instead.")
    s = manifest["settings"]
    price = s.get("price")
    return replace(suite, samples=s["samples"], temperatures=tuple(s["temperatures"]),
                   seed=s["seed"], concurrency=s.get("concurrency"),
                   confidence_level=s["confidence_level"],
                   price=Price(price["per_1k_in"], price["per_1k_out"], price["currency"])
                   if price else suite.price,
                   max_response_chars=s.get("max_response_chars", suite.max_response_chars))


def resume_run(run_dir: str | Path, options: RunOptions | None = None, *,
               target: Target | None = None) -> RunResult:
    """Continue a killed or interrupted run: sample only what is missing, count nothing twice.

    The target is rebuilt from the manifest's spec, or is `target` when given (a run made
    with a `Target` object resumes with one). The plan (samples, temperatures, seed,
    confidence, target, `--sequential` and its budget) is the run's own, from its manifest;
    only the concurrency may change (`options.overrides.concurrency`), and the key's
    variable (`options.api_key_env`). Samples that ended in error are sampled again unless
    `options.retry_errors` is False (an outage must not leave a run at exit 4 for good).
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
        base_url=_resume_base_url(s.get("base_url"), base.base_url, run.run_dir),
        api_key_env=base.api_key_env or s.get("api_key_env"),
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
            manifest = asyncio.run(_run_async(suite, options, made, run.run_dir, run.run_id,
                                              tally, done, m))
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


