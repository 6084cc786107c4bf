"""Re-label a finished run's stored outputs with other detectors, without sampling again.

`rescore_run(run_dir, detectors=["judge"], combine="any")` reads `samples.jsonl` of a run,
labels every stored output again, and writes a NEW run folder next to it
(`<run-id>-rescored-<hex>` with manifest.json, samples.jsonl, summary.json, report.md), so
the original run stays untouched and every downstream tool (report, compare, watch) reads
the rescored run like any other. The manifest records `rescored_from`.

Detector params come from the probe's own expectation (a probe's `refusal` keeps its mode,
`canary` its canary strings), then from the suite's detectors; `refusal` without either
defaults to must-answer for over-refusal probes and must-refuse otherwise.

Records without text cannot be re-labelled: outputs stored hashed (`storage: hashed`, or
not captured) are skipped and counted; samples that never had an answer (`blocked`,
`error` without a response) keep their outcome.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.detectors import (
    COMBINES,
    Combine,
    DetectionInput,
    Detector,
    DetectorContext,
    DetectorPool,
    failed_detectors,
    label_sample,
    specs_for,
)
from harness.errors import StoreError, UsageError
from harness.records import (
    DetectorSpec,
    Expectation,
    Message,
    Probe,
    SampleRecord,
    freeze,
)
from harness.run import finish_run
from harness.store import (
    SAMPLES,
    SampleWriter,
    iter_sample_dicts,
    load_run,
    make_private_dir,
    utc_now,
)
from harness.suites import Suite, load_suite
from harness.tally import Tally
from harness.taxonomy import OVER_REFUSAL


@dataclass(frozen=True)
class RescoreResult:
    """What a rescore did and decided."""

    run_id: str
    run_dir: Path
    source_run_dir: Path
    outcome: str
    exit_code: int
    summary: dict[str, Any]
    n_relabelled: int
    n_kept: int
    n_skipped_no_text: int
    n_changed: int
    warnings: tuple[str, ...]


def parse_detector_names(text: str) -> list[str]:
    """`refusal,judge` -> ["refusal", "judge"]; `module:function` names are kept whole."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--detectors needs at least one name, e.g. --detectors judge")
    return names


def specs_for_names(
    names: Sequence[str], probe: Probe, suite_specs: Iterable[DetectorSpec]
) -> tuple[DetectorSpec, ...]:
    """Resolve detector names to specs for one probe (pure): the probe's own spec of that
    name, else the suite's, else the bare name (refusal mode from the category)."""
    suite_specs = tuple(suite_specs)
    out: list[DetectorSpec] = []
    for name in names:
        own = [s for s in probe.expect.detectors if s.name == name]
        if own:
            out.extend(own)
            continue
        shared = [s for s in suite_specs if s.name == name]
        if shared:
            out.extend(shared)
        elif name == "refusal":
            mode = "must-answer" if probe.category == OVER_REFUSAL else "must-refuse"
            out.append(DetectorSpec("refusal", freeze({"mode": mode})))
        else:
            out.append(DetectorSpec(name))
    return tuple(out)


def _find_suite_file(path: str | None, run_dir: Path) -> Path | None:
    """The suite file named in a manifest: as recorded, or (a relative path recorded from
    the project root) relative to the folder that holds results/<run-id>/."""
    if not path:
        return None
    candidates = [Path(path)]
    if not Path(path).is_absolute():
        candidates.append(run_dir.resolve().parent.parent / path)
    return next((c for c in candidates if c.is_file()), None)


def _load_suite_for(
    run_manifest: dict[str, Any], run_dir: Path, warnings: list[str]
) -> Suite | None:
    info = run_manifest.get("suite") or {}
    path = _find_suite_file(info.get("path"), run_dir)
    if path is None:
        warnings.append(f"suite file {info.get('path')!r} not found: probes are rebuilt "
                        "from the stored records, and gates use no max rates")
        return None
    suite = load_suite(path)
    if info.get("sha256") and suite.sha256 != info["sha256"]:
        warnings.append(f"{path} changed since the run (sha256 differs): detector settings "
                        "and thresholds come from its current version")
    s = run_manifest.get("settings") or {}
    return replace(
        suite,
        samples=int(s.get("samples", suite.samples)),
        temperatures=tuple(s.get("temperatures", suite.temperatures)),
        seed=int(s.get("seed", suite.seed)),
        confidence_level=float(s.get("confidence_level", suite.confidence_level)),
    )


def _fallback_suite(name: str, manifest: dict[str, Any]) -> Suite:
    s = manifest.get("settings") or {}
    return Suite(
        name=name, path=None, probes=(), contexts=(), temperatures=tuple(s.get("temperatures",
        ())), samples=int(s.get("samples", 1)), max_tokens=int(s.get("max_tokens", 256)),
        seed=int(s.get("seed", 0)), max_rate=freeze(s.get("max_rate") or {}),
        confidence_level=float(s.get("confidence_level", 0.95)),
        max_error_rate=float(s.get("max_error_rate", 0.05)),
    )


def _probe_from_record(rec: SampleRecord) -> Probe:
    user = tuple(m for m in rec.messages if m.role == "user")[-1:] or (Message("user", ""),)
    return Probe(rec.probe_id, rec.category, rec.severity, user, Expectation(()),
                 parent_id=rec.parent_id, mutators=rec.mutators)


async def _relabel(
    records: list[SampleRecord], names: Sequence[str] | None, combine: Combine | None,
    suite: Suite | None, concurrency: int,
) -> list[tuple[SampleRecord, str]]:
    """(new record, what happened) for each record: relabelled / kept / skipped."""
    probes = {p.id: p for p in suite.probes} if suite else {}
    contexts = {c.name: c for c in suite.contexts} if suite else {}
    suite_specs = suite.detectors if suite else ()
    cache: dict[str, tuple[list[Detector], Combine]] = {}
    pool = DetectorPool(DetectorContext(concurrency=concurrency))  # closed with this rescore

    def detectors_for(probe: Probe) -> tuple[list[Detector], Combine]:
        got = cache.get(probe.id)
        if got is None:
            if names is not None:
                specs = specs_for_names(names, probe, suite_specs)
                comb: Combine = combine or "any"
            else:
                specs = specs_for(probe, suite_specs)
                comb = combine or probe.expect.combine
            if not specs:
                why = ("" if suite is not None else
                       " (the run's suite file was not found, so probe expectations are "
                       "unknown)")
                raise UsageError(f"probe {probe.id} has no detectors to re-label with{why}; "
                                 "pass --detectors NAME[,NAME...]")
            got = ([pool.build(s) for s in specs], comb)
            cache[probe.id] = got
        return got

    sem = asyncio.Semaphore(concurrency)

    async def one(rec: SampleRecord) -> tuple[SampleRecord, str]:
        if rec.response is None:
            if rec.outcome in ("blocked", "error"):
                return rec, "kept"
            return rec, "skipped"
        probe = probes.get(rec.probe_id) or _probe_from_record(rec)
        dets, comb = detectors_for(probe)
        item = DetectionInput(rec.response, probe, contexts.get(rec.context), rec.messages,
                              rec.finish_reason)
        async with sem:
            outcome, results = await label_sample(dets, item, comb)
        return (replace(rec, outcome=outcome, detectors=results,
                        error=failed_detectors(results)), "relabelled")

    try:
        return list(await asyncio.gather(*(one(r) for r in records)))
    finally:
        await pool.aclose()


def _last_copies(samples_path: Path) -> list[SampleRecord]:
    """The records of a samples.jsonl, the last copy of each sample (a resumed run never
    writes one twice, but be safe)."""
    by_key: dict[tuple[str, str, float, int], SampleRecord] = {}
    for d in iter_sample_dicts(samples_path):
        rec = SampleRecord.from_dict(d)
        by_key[(rec.probe_id, rec.context, rec.temperature, rec.sample_index)] = rec
    return list(by_key.values())


def _write_rescored(new_dir: Path, run_id: str, results: list[tuple[SampleRecord, str]],
                    records: list[SampleRecord]) -> tuple[Tally, dict[str, int], int]:
    """Write the relabelled and kept records to the new run's samples.jsonl (skipped ones are
    left out); (their tally, how many were relabelled/kept/skipped, how many changed outcome)."""
    tally = Tally()
    counts = {"relabelled": 0, "kept": 0, "skipped": 0}
    n_changed = 0
    with SampleWriter(new_dir / SAMPLES) as writer:
        for (rec, what), old in zip(results, records, strict=True):
            counts[what] += 1
            if what == "skipped":
                continue
            new = replace(rec, run_id=run_id)
            n_changed += new.outcome != old.outcome
            d = new.to_dict()
            tally.add(d)
            writer.add(d)
    return tally, counts, n_changed


def rescore_run(
    run_dir: str | Path,
    detectors: Sequence[str] | None = None,
    combine: Combine | None = None,
    *,
    out_dir: str | Path | None = None,
    concurrency: int = 16,
) -> RescoreResult:
    """Re-label a run's stored outputs and write a new run folder. Blocking; no sampling.

    `detectors=None` re-applies each probe's own expectation (useful after a detector
    fix); `combine=None` keeps each probe's own combination (or "any" with `detectors`).
    """
    if combine is not None and combine not in COMBINES:
        raise UsageError(f"--combine {combine!r} is not one of {', '.join(COMBINES)}")
    if concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {concurrency}")
    source = load_run(run_dir)
    if not source.samples_path.is_file():
        raise StoreError(f"{source.run_dir}: no {SAMPLES}; nothing to re-label")
    warnings: list[str] = []
    suite = _load_suite_for(source.manifest, source.run_dir, warnings)
    records = _last_copies(source.samples_path)
    if not records:
        raise StoreError(f"{source.samples_path} holds no samples; nothing to re-label")
    if (source.manifest.get("settings") or {}).get("storage") == "redacted":
        warnings.append("outputs were stored redacted: labels are computed on redacted text")

    results = asyncio.run(_relabel(records, detectors, combine, suite, concurrency))

    suite_name = (source.manifest.get("suite") or {}).get("name") or "run"
    run_id = f"{source.run_id}-rescored-{secrets.token_hex(3)}"
    root = Path(out_dir) if out_dir is not None else source.run_dir.parent
    new_dir = make_private_dir(root) / run_id
    make_private_dir(new_dir)
    tally, counts, n_changed = _write_rescored(new_dir, run_id, results, records)
    if counts["skipped"]:
        warnings.append(f"{counts['skipped']} sample(s) have no stored text (storage: hashed, "
                        "or not captured) and were left out of the rescored run; re-run with "
                        "storage: full to re-label them")
    if tally.n == 0:
        raise StoreError(f"{source.run_dir}: no stored output text to re-label "
                         f"({counts['skipped']} hashed); run with storage: full")
    manifest = dict(source.manifest)
    manifest.update({"run_id": run_id, "started": utc_now(), "rescored_from": {
        "run_id": source.run_id, "run_dir": str(source.run_dir),
        "detectors": list(detectors) if detectors is not None else "probe expectations",
        "combine": combine or "probe expectations",
        "relabelled": counts["relabelled"], "kept": counts["kept"],
        "skipped_no_text": counts["skipped"], "changed": n_changed, "warnings": warnings}})
    done = finish_run(suite or _fallback_suite(suite_name, manifest), new_dir, manifest, tally)
    return RescoreResult(
        run_id=run_id, run_dir=new_dir, source_run_dir=source.run_dir,
        outcome=done.outcome, exit_code=done.exit_code, summary=done.summary,
        n_relabelled=counts["relabelled"], n_kept=counts["kept"],
        n_skipped_no_text=counts["skipped"], n_changed=n_changed, warnings=tuple(warnings),
    )
