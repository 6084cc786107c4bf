"""`harness calibrate`: a detector over human-labelled outputs, as a run that samples nothing
and ends in the one finish step (`finish_run`), like a rescore.

Each label item becomes a probe (its category, its prompt or messages; the probe id
`label-<line>`, the item's line in the label file) whose one sample is the labelled text.
The detector labels every text through this calibration's `DetectorPool`; the records go to
the run's samples.jsonl and `finish_run` writes summary.json (the detector's harmful rate per
category over the labelled set), report.md, report.html and the finished manifest. The
calibration itself (the detector's flags against the human labels: TP/FN/TN/FP, sensitivity
and specificity) is written to its own file, which names the run.

The run folder sits beside the calibration file (`results/calibrations/<run-id>/`), so a
calibration and the labelling behind it are kept together.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.detectors import (
    DetectionInput,
    DetectorContext,
    DetectorPool,
    failed_detectors,
    label_sample,
)
from harness.errors import InputError
from harness.privacy import scrub_secrets
from harness.records import (
    Context,
    DetectorSpec,
    Expectation,
    Message,
    Probe,
    SampleRecord,
    freeze,
    sha256_text,
)
from harness.run._finish import finish_run
from harness.run._options import RunResult
from harness.store import (
    MANIFEST,
    SAMPLES,
    SCHEMA_VERSION,
    SampleWriter,
    make_private_dir,
    new_run_id,
    utc_now,
    write_json,
)
from harness.suites import Suite
from harness.tally import Tally

if TYPE_CHECKING:  # harness.calibration is imported when a calibration runs (it pulls in
    # the statistics: `import harness.run` stays light, see run/_finish.py)
    from harness.calibration import Flag, LabelItem

__all__ = ["CalibrationRun", "calibrate", "calibrate_run", "detect_labels"]

_CONTEXT = Context(name="bare", description="the labelled output as it was given")


@dataclass(frozen=True)
class CalibrationRun:
    """A calibration (the document and its file) and the run that labelled its items."""

    doc: dict[str, Any]
    path: Path
    run: RunResult


def label_probe(item: LabelItem, spec: DetectorSpec) -> Probe:
    """The probe a label item stands for: its conversation (or a placeholder user turn),
    category and the detector under calibration as its expectation."""
    messages = item.messages or (Message("user", "(request not recorded)"),)
    return Probe(id=f"label-{item.line}", category=item.category, severity="medium",
                 messages=messages, expect=Expectation((spec,)), source="calibration")


def _labels_suite(spec: DetectorSpec, probes: Sequence[Probe], labels_path: Path,
                  sha: str, confidence_level: float) -> Suite:
    """The suite of a calibration run: one sample of each label probe, nothing gated."""
    return Suite(name=f"calibration-{spec.name}", path=None, probes=tuple(probes),
                 contexts=(_CONTEXT,), temperatures=(0.0,), samples=1, max_tokens=0, seed=0,
                 max_rate=freeze({}), confidence_level=confidence_level, max_error_rate=0.05,
                 description=f"detector {spec.name} over the labelled outputs of {labels_path}",
                 sha256=sha)


def _record(run_id: str, probe: Probe, text: str, outcome: str, results: Sequence[Any],
            now: str) -> SampleRecord:
    return SampleRecord(
        run_id=run_id, probe_id=probe.id, parent_id=probe.parent_id, family=probe.family,
        mutators=(), category=probe.category, severity=probe.severity, context=_CONTEXT.name,
        temperature=0.0, sample_index=0, seed=0, messages=probe.messages, response=text,
        finish_reason="stop", outcome=outcome,  # type: ignore[arg-type]
        detectors=tuple(results), latency_s=None, tokens_in=None, tokens_out=None, model=None,
        system_fingerprint=None, time=now, error=failed_detectors(results),
        response_sha256=sha256_text(text), response_chars=len(text))


async def detect_labels(spec: DetectorSpec, items: Sequence[LabelItem], concurrency: int = 8,
                        run_id: str = "calibration") -> list[SampleRecord]:
    """Label every item's text with the detector: one record per item, in order (outcome
    harmful / safe / unclear, or error when the detector failed).

    The detector comes from a `DetectorPool` owned by this call (as a run's and a rescore's
    do), so its target, clients and judge cache are closed with it."""
    pool = DetectorPool(DetectorContext(concurrency=concurrency))
    detector = pool.build(spec)
    sem = asyncio.Semaphore(concurrency)
    now = utc_now()

    async def one(item: LabelItem) -> SampleRecord:
        probe = label_probe(item, spec)
        async with sem:
            outcome, results = await label_sample(
                [detector], DetectionInput(item.text, probe, None, probe.messages, "stop"))
        return _record(run_id, probe, item.text, outcome, results, now)

    try:
        return list(await asyncio.gather(*(one(it) for it in items)))
    finally:
        await pool.aclose()


def _flag(outcome: str) -> Flag:
    """What the detector said about a labelled item: flagged (True), not (False), an error
    (None), or unclear, counted apart as a run leaves it out of a rate's denominator."""
    from harness.calibration import UNCLEAR

    if outcome == "error":
        return None
    return UNCLEAR if outcome == "unclear" else outcome == "harmful"


def _manifest(suite: Suite, spec: DetectorSpec, run_id: str, labels_path: Path, sha: str,
              started: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "harness_version": __version__,
        "suite": {"name": suite.name, "path": None, "sha256": sha, "deployment": "general",
                  "incident": None},
        "target": {"spec": f"labels:{labels_path}", "kind": "labels",
                   "name": f"labels:{labels_path.name}"},
        "settings": {"samples": 1, "temperatures": [0.0], "seed": 0, "concurrency": None,
                     "confidence_level": suite.confidence_level,
                     "max_error_rate": suite.max_error_rate, "max_rate": {},
                     "storage": suite.storage, "contexts": [_CONTEXT.name],
                     "n_probes": len(suite.probes)},
        # A base_url can carry a key in its query string; the manifest must not.
        "calibration_of": {"detector": {k: scrub_secrets(v) if isinstance(v, str) else v
                                        for k, v in spec.to_dict().items()},
                           "labels_file": str(labels_path), "labels_sha256": sha},
        "planned_samples": len(suite.probes), "started": started, "finished": None,
        "status": "running",
    }


def calibrate_run(spec: DetectorSpec, labels_path: str | Path, *, out: Path | None = None,
                  confidence_level: float = 0.95, results_dir: Path = Path("results"),
                  concurrency: int = 8) -> CalibrationRun:
    """Label a label file with a detector as a run (finished by `finish_run`), then write the
    calibration (owner-only) beside that run folder; return both."""
    from harness.calibration import build_calibration, default_calibration_path, load_labels

    labels_path = Path(labels_path)
    items = load_labels(labels_path)
    sha = hashlib.sha256(labels_path.read_bytes()).hexdigest()
    started = utc_now()
    suite = _labels_suite(spec, [label_probe(i, spec) for i in items], labels_path, sha,
                          confidence_level)
    run_id = new_run_id(suite.name)
    records = asyncio.run(detect_labels(spec, items, concurrency, run_id))
    if all(r.outcome == "error" for r in records):
        raise InputError(f"{labels_path}: the detector {spec.name!r} failed on every item; check "
                         "its settings (base_url, model, api_key_env) and that it is reachable")
    path = out or default_calibration_path(spec, sha, results_dir)
    run_dir = make_private_dir(path.parent) / run_id
    make_private_dir(run_dir)
    manifest = _manifest(suite, spec, run_id, labels_path, sha, started)
    write_json(run_dir / MANIFEST, manifest)
    tally = Tally()
    with SampleWriter(run_dir / SAMPLES) as writer:
        for rec in records:
            d = rec.to_dict()
            tally.add(d)
            writer.add(d)
    run = finish_run(suite, run_dir, manifest, tally)
    flagged = [_flag(r.outcome) for r in records]
    doc = build_calibration(spec, items, flagged, labels_file=str(labels_path),
                            labels_sha256=sha, created=utc_now(),
                            confidence_level=confidence_level)
    doc["run"] = {"run_id": run_id, "run_dir": str(run_dir)}
    write_json(path, doc)
    return CalibrationRun(doc, path, run)


def calibrate(spec: DetectorSpec, labels_path: str | Path, *, out: Path | None = None,
              confidence_level: float = 0.95, results_dir: Path = Path("results"),
              concurrency: int = 8) -> tuple[dict[str, Any], Path]:
    """Run a detector over a label file, write the calibration (owner-only) and the run
    behind it; return the calibration and its path (`calibrate_run` for the run too)."""
    done = calibrate_run(spec, labels_path, out=out, confidence_level=confidence_level,
                         results_dir=results_dir, concurrency=concurrency)
    return done.doc, done.path
