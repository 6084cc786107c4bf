"""Detector calibration against human labels, and judge-corrected rates.

`harness calibrate DETECTOR --labels FILE` runs a detector over human-labelled outputs and
counts, per category and pooled:

* TP: labelled harmful, flagged;  FN: labelled harmful, not flagged;
* TN: labelled safe, not flagged; FP: labelled safe, flagged;

sensitivity = TP / (TP + FN) and specificity = TN / (TN + FP), each with a Wilson interval
(`harness.stats.binomial_interval`). The calibration file keeps the counts, because the
correction needs them (the calibration's own uncertainty widens the corrected interval).

`corrected_rates(summary, calibration_path)` turns a run summary's observed rates into
Rogan-Gladen corrected ones with `harness.stats.misclassification.rogan_gladen` (Rogan &
Gladen 1978; interval per Lang & Reiczigel 2014; see that module).

Label file format (JSONL, one object a line): `text` (string), `label` ("harmful" | "safe"),
`category` (taxonomy id); optional `prompt` or `messages` (what produced the text; the judge
reads it), `probe_id`, `run_id`, `sample_index`. `harness review` writes this format.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import (
    InputError,
    Problem,
    StatsInputError,
    UsageError,
    ValidationError,
)
from harness.records import (
    DetectorSpec,
    Expectation,
    Message,
    Probe,
    freeze,
    stable_json,
)
from harness.stats import binomial_interval
from harness.stats.misclassification import rogan_gladen
from harness.taxonomy import OVER_REFUSAL

CALIBRATION_KIND = "harness-calibration"
CALIBRATION_SCHEMA = 1
LABELS = ("harmful", "safe")
INTERVAL_METHOD = "wilson"
_ROLES = ("system", "user", "assistant", "tool")
# Params that name where a key lives or hold one; never written to a calibration file.
_SECRET_PARAMS = ("api_key",)


# --------------------------------------------------------------------------- label files


@dataclass(frozen=True)
class LabelItem:
    """One human-labelled output."""

    text: str
    harmful: bool
    category: str
    line: int
    messages: tuple[Message, ...] = ()
    probe_id: str | None = None


def parse_label_line(obj: Any, file: str, line: int) -> tuple[LabelItem | None, list[Problem]]:
    """Check one parsed JSONL line; return the item or the problems (pure)."""
    problems: list[Problem] = []

    def bad(field: str, message: str) -> None:
        problems.append(Problem(file, line, field, message))

    if not isinstance(obj, Mapping):
        bad("(line)", "expected a JSON object with text, label and category")
        return None, problems
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        bad("text", "missing or empty; give the model output that was labelled")
    label = obj.get("label")
    if label not in LABELS:
        bad("label", f"{label!r} is not one of harmful, safe")
    category = obj.get("category")
    if not isinstance(category, str) or not category.strip():
        bad("category", "missing; give the harm category (e.g. dangerous-instructions)")
    messages: list[Message] = []
    if "messages" in obj:
        raw = obj["messages"]
        if not isinstance(raw, list) or not raw:
            bad("messages", "must be a non-empty list of {role, content}")
        else:
            for i, m in enumerate(raw):
                if (not isinstance(m, Mapping) or m.get("role") not in _ROLES
                        or not isinstance(m.get("content"), str)):
                    bad(f"messages[{i}]", "must be {role: system|user|assistant|tool, "
                        "content: string}")
                else:
                    messages.append(Message(m["role"], m["content"]))
    elif "prompt" in obj:
        if not isinstance(obj["prompt"], str):
            bad("prompt", "must be a string")
        else:
            messages.append(Message("user", obj["prompt"]))
    probe_id = obj.get("probe_id")
    if probe_id is not None and not isinstance(probe_id, str):
        bad("probe_id", "must be a string")
    if problems:
        return None, problems
    assert isinstance(text, str) and isinstance(category, str)
    return LabelItem(text=text, harmful=label == "harmful", category=category.strip(),
                     line=line, messages=tuple(messages),
                     probe_id=probe_id if isinstance(probe_id, str) else None), []


def load_labels(path: str | Path) -> list[LabelItem]:
    """Read a label file; raise ValidationError listing every bad line (`file:line: field`)."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{p}: label file not found; pass the JSONL written by `harness "
                         "review` or your own (text, label, category per line)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read ({exc})") from None
    items: list[LabelItem] = []
    problems: list[Problem] = []
    for i, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(str(p), i, "(json)", f"not valid JSON: {exc.msg} at column "
                                    f"{exc.colno}"))
            continue
        item, probs = parse_label_line(obj, str(p), i)
        problems.extend(probs)
        if item is not None:
            items.append(item)
    if problems:
        raise ValidationError(problems)
    if not items:
        raise ValidationError([Problem(str(p), None, "(file)", "no labelled lines; each line "
                                       "needs text, label and category")])
    return items


# --------------------------------------------------------------------------- detector specs


def parse_detector_arg(text: str) -> DetectorSpec:
    """`judge`, `refusal`, `moderation`, a plug-in name, or JSON `{"name": ..., params}`.

    The `refusal` detector is calibrated in mode must-refuse (flagged = answered) unless a
    JSON spec says otherwise.
    """
    text = text.strip()
    params: dict[str, Any]
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"DETECTOR {text!r} is not valid JSON ({exc.msg}); give a name like "
                             "`judge` or JSON like '{\"name\": \"judge\", \"model\": \"...\"}'"
                             ) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            raise UsageError("DETECTOR JSON needs a string field `name`, e.g. "
                             "'{\"name\": \"judge\", \"base_url\": \"http://...\"}'")
        name = obj.pop("name")
        params = obj
    else:
        if not text:
            raise UsageError("DETECTOR is empty; give a name such as judge, moderation, refusal")
        name, params = text, {}
    for k in _SECRET_PARAMS:
        if k in params:
            raise UsageError(f"DETECTOR: do not put `{k}` in the spec (it would be stored); "
                             "use `api_key_env` with the name of an environment variable")
    if name == "refusal":
        params.setdefault("mode", "must-refuse")
    return DetectorSpec(name, freeze(params))


def calibration_id(spec: DetectorSpec) -> str:
    """Canonical identity of a detector configuration (name + params)."""
    return stable_json(spec.to_dict())


def _probe_for(item: LabelItem, spec: DetectorSpec) -> Probe:
    messages = item.messages or (Message("user", "(request not recorded)"),)
    return Probe(id=item.probe_id or f"label-{item.line}", category=item.category,
                 severity="medium", messages=messages, expect=Expectation((spec,)),
                 source="calibration")


async def detect_labels(spec: DetectorSpec, items: Sequence[LabelItem],
                        concurrency: int = 8) -> list[bool | None]:
    """Run the detector over every item: True flagged, False not flagged, None error."""
    from harness.detectors import aclose_all, build, label_sample
    from harness.detectors.base import DetectionInput

    detector = build(spec)
    sem = asyncio.Semaphore(concurrency)

    async def one(item: LabelItem) -> bool | None:
        probe = _probe_for(item, spec)
        async with sem:
            outcome, _ = await label_sample(
                [detector], DetectionInput(item.text, probe, None, probe.messages, "stop"))
        return None if outcome == "error" else outcome == "harmful"

    try:
        return list(await asyncio.gather(*(one(it) for it in items)))
    finally:
        await aclose_all()


# --------------------------------------------------------------------------- counting


@dataclass(frozen=True)
class ConfusionCounts:
    """Detector flags against human labels."""

    tp: int
    fn: int
    tn: int
    fp: int
    n_error: int = 0

    @property
    def n_harmful(self) -> int:
        return self.tp + self.fn

    @property
    def n_safe(self) -> int:
        return self.tn + self.fp

    def to_dict(self, confidence_level: float) -> dict[str, Any]:
        """Counts, sensitivity and specificity with Wilson intervals (None when undefined)."""
        out: dict[str, Any] = {"tp": self.tp, "fn": self.fn, "tn": self.tn, "fp": self.fp,
                               "n_harmful": self.n_harmful, "n_safe": self.n_safe,
                               "n_error": self.n_error}
        for name, k, n in (("sensitivity", self.tp, self.n_harmful),
                           ("specificity", self.tn, self.n_safe)):
            if n:
                iv = binomial_interval(k, n, confidence_level, INTERVAL_METHOD)
                out[name], out[f"{name}_low"], out[f"{name}_high"] = k / n, iv.low, iv.high
            else:
                out[name] = out[f"{name}_low"] = out[f"{name}_high"] = None
        return out


def confusion_counts(truth: Sequence[bool], flagged: Sequence[bool | None]) -> ConfusionCounts:
    """Count TP/FN/TN/FP (pure); `None` flags (detector errors) are counted apart."""
    tp = fn = tn = fp = err = 0
    for t, f in zip(truth, flagged, strict=True):
        if f is None:
            err += 1
        elif t and f:
            tp += 1
        elif t:
            fn += 1
        elif f:
            fp += 1
        else:
            tn += 1
    return ConfusionCounts(tp, fn, tn, fp, err)


def calibration_table(items: Sequence[LabelItem], flagged: Sequence[bool | None],
                      confidence_level: float = 0.95) -> dict[str, Any]:
    """Pooled and per-category counts, sensitivity and specificity (pure)."""
    pooled = confusion_counts([i.harmful for i in items], flagged)
    cats: dict[str, dict[str, Any]] = {}
    for cat in sorted({i.category for i in items}):
        idx = [j for j, i in enumerate(items) if i.category == cat]
        cc = confusion_counts([items[j].harmful for j in idx], [flagged[j] for j in idx])
        cats[cat] = cc.to_dict(confidence_level)
    return {"pooled": pooled.to_dict(confidence_level), "categories": cats}


def build_calibration(spec: DetectorSpec, items: Sequence[LabelItem],
                      flagged: Sequence[bool | None], *, labels_file: str, labels_sha256: str,
                      created: str, confidence_level: float = 0.95) -> dict[str, Any]:
    """The calibration JSON document (pure)."""
    from harness.privacy import scrub_secrets

    table = calibration_table(items, flagged, confidence_level)
    # A base_url can carry a key in its query string; the file must not.
    detector = {k: scrub_secrets(v) if isinstance(v, str) else v
                for k, v in spec.to_dict().items()}
    return {
        "kind": CALIBRATION_KIND,
        "schema_version": CALIBRATION_SCHEMA,
        "detector": detector,
        "detector_name": spec.name,
        "labels_file": labels_file,
        "labels_sha256": labels_sha256,
        "created": created,
        "confidence_level": confidence_level,
        "interval_method": INTERVAL_METHOD,
        "n_items": len(items),
        **table,
    }


def default_calibration_path(spec: DetectorSpec, labels_sha256: str,
                             out_dir: Path = Path("results")) -> Path:
    """`results/calibrations/<detector>-<sha8>.json`, sha8 over detector spec and labels."""
    h = hashlib.sha256(f"{calibration_id(spec)}|{labels_sha256}".encode()).hexdigest()[:8]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in spec.name)
    return out_dir / "calibrations" / f"{safe}-{h}.json"


def calibrate(spec: DetectorSpec, labels_path: str | Path, *, out: Path | None = None,
              confidence_level: float = 0.95, results_dir: Path = Path("results"),
              concurrency: int = 8) -> tuple[dict[str, Any], Path]:
    """Run a detector over a label file, write the calibration (owner-only); return both."""
    from harness.store import make_private_dir, utc_now, write_json

    items = load_labels(labels_path)
    sha = hashlib.sha256(Path(labels_path).read_bytes()).hexdigest()
    flagged = asyncio.run(detect_labels(spec, items, concurrency))
    if all(f is None for f in flagged):
        raise InputError(f"{labels_path}: the detector {spec.name!r} failed on every item; check "
                         "its settings (base_url, model, api_key_env) and that it is reachable")
    doc = build_calibration(spec, items, flagged, labels_file=str(labels_path),
                            labels_sha256=sha, created=utc_now(),
                            confidence_level=confidence_level)
    path = out or default_calibration_path(spec, sha, results_dir)
    make_private_dir(path.parent)
    write_json(path, doc)
    return doc, path


# --------------------------------------------------------------------------- corrected rates


def load_calibration(path: str | Path) -> dict[str, Any]:
    """Read and check a calibration file written by `harness calibrate`."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: calibration file not found; create one with `harness calibrate "
                         "DETECTOR --labels FILE`") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{p}: not a readable calibration file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != CALIBRATION_KIND:
        raise InputError(f"{p}: not a calibration file (kind is not {CALIBRATION_KIND!r}); "
                         "create one with `harness calibrate`")
    pooled = doc.get("pooled")
    if not isinstance(pooled, dict) or not all(
            isinstance(pooled.get(k), int) for k in ("tp", "fn", "tn", "fp")):
        raise InputError(f"{p}: pooled: counts tp, fn, tn, fp missing; re-run `harness "
                         "calibrate`")
    return doc


def _usable(c: Mapping[str, Any] | None) -> bool:
    """Both arms present: the correction needs harmful and safe calibration items."""
    if not c:
        return False
    return int(c["tp"]) + int(c["fn"]) > 0 and int(c["tn"]) + int(c["fp"]) > 0


def corrected_rate_row(key: str, by: str, k: int, n_scored: int, n_blocked: int,
                       counts: Mapping[str, Any], source: str, confidence_level: float,
                       calibration_name: str) -> dict[str, Any]:
    """One corrected rate (pure).

    Blocked samples (provider content filter) were never labelled by the detector and are
    truly safe, so the correction applies to the n_scored - n_blocked detector-labelled
    samples and the result is scaled back to the n_scored denominator of the summary's rate
    (a constant factor, applied to the limits too).
    """
    n_det = n_scored - n_blocked
    tp, fn, tn, fp = (int(counts[x]) for x in ("tp", "fn", "tn", "fp"))
    if n_det <= 0:  # every scored sample was blocked by the provider: truly safe
        return {"key": key, "by": by, "raw_rate": k / n_scored, "rate": 0.0, "low": 0.0,
                "high": 0.0, "method": "all blocked (no detector labels to correct)",
                "sensitivity": tp / max(tp + fn, 1), "specificity": tn / max(tn + fp, 1),
                "calibration": source, "calibration_harmful": tp + fn,
                "calibration_safe": tn + fp, "n_scored": n_scored,
                "confidence_level": confidence_level}
    try:
        r = rogan_gladen(k, n_det, tp, tp + fn, tn, tn + fp, confidence_level)
    except StatsInputError as exc:
        raise UsageError(
            f"calibration {calibration_name} ({source}) cannot correct {by} {key!r}: {exc}"
        ) from None
    scale = n_det / n_scored
    return {"key": key, "by": by, "raw_rate": k / n_scored, "rate": r.rate * scale,
            "low": r.low * scale, "high": r.high * scale, "method": r.method,
            "sensitivity": r.sensitivity, "specificity": r.specificity,
            "calibration": source, "calibration_harmful": r.calibration_harmful,
            "calibration_safe": r.calibration_safe, "n_scored": n_scored,
            "confidence_level": confidence_level}


def check_usable(doc: Mapping[str, Any], name: str) -> None:
    """Refuse a calibration whose pooled counts cannot correct anything (UsageError)."""
    pooled = doc["pooled"]
    if not _usable(pooled):
        raise UsageError(f"{name}: the calibration needs both harmful and safe labelled items "
                         f"(has {pooled['tp'] + pooled['fn']} harmful, "
                         f"{pooled['tn'] + pooled['fp']} safe); label more outputs")
    tp, fn, tn, fp = (int(pooled[x]) for x in ("tp", "fn", "tn", "fp"))
    if tp / (tp + fn) + tn / (tn + fp) <= 1:
        raise UsageError(f"{name}: pooled sensitivity {tp / (tp + fn):.3f} + specificity "
                         f"{tn / (tn + fp):.3f} <= 1: the detector does no better than chance "
                         "on the calibration set, so no correction is possible; fix or "
                         "replace the detector, or check that the labels are not swapped")


def corrected_rates(summary: Mapping[str, Any], calibration_path: Path) -> list[dict[str, Any]]:
    """Calibration-corrected rates beside the raw ones, only where the calibration applies.

    A calibration measures one detector on some categories. It corrects a group only when
    (a) that detector labelled every scored sample of the group (a refusal calibration says
    nothing about samples a canary or pattern detector labelled), and (b) the group is a
    category the calibration measured (its own counts, both arms present), or `overall`
    when every harm category in it was measured (pooled counts). Other groups get a row
    with `rate` None and a `note` saying why, never a made-up 0%. Raises UsageError when
    the pooled sensitivity + specificity <= 1.
    """
    doc = load_calibration(calibration_path)
    name = str(calibration_path)
    conf = float(summary.get("confidence_level", 0.95))
    pooled = doc["pooled"]
    cats: Mapping[str, Any] = doc.get("categories") or {}
    detector = str(doc.get("detector_name"))
    check_usable(doc, name)
    groups = [g for g in summary.get("groups") or [] if g.get("by") in ("overall", "category")]
    harm_categories = {str(g["key"]) for g in groups if g["by"] == "category"
                       and g["key"] != OVER_REFUSAL and int(g.get("n_scored", 0)) > 0}
    out: list[dict[str, Any]] = []
    for g in groups:
        n_scored = int(g.get("n_scored", g.get("n", 0) - g.get("n_error", 0)))
        if n_scored <= 0:
            continue
        key = str(g["key"])
        n_blocked = int(g.get("n_blocked", 0))
        flagged = g.get("n_flagged_by")
        k = int(flagged.get(detector, 0)) if flagged is not None else int(g["n_harmful"])
        labelled = g.get("n_labelled_by")
        n_labelled = int(labelled.get(detector, 0)) if labelled is not None \
            else n_scored - n_blocked
        note = ""
        counts: Mapping[str, Any] | None = None
        source = ""
        if n_labelled == 0:
            note = f"the {detector} detector labels no sample of this group"
        elif n_labelled < n_scored - n_blocked:
            note = (f"the {detector} detector labels {n_labelled} of {n_scored - n_blocked} "
                    "scored samples here; other detectors' labels have other error rates")
        elif g["by"] == "category":
            if _usable(cats.get(key)):
                counts, source = cats[key], f"category {key}"
            else:
                note = f"the calibration has no harmful and safe items of category {key}"
        else:
            missing = sorted(c for c in harm_categories if not _usable(cats.get(c)))
            if missing:
                note = ("the calibration did not measure " + ", ".join(missing)
                        + ", which are part of this group")
            else:
                counts, source = pooled, "pooled"
        if counts is None:
            out.append({"key": key, "by": g["by"], "raw_rate": k / n_scored, "rate": None,
                        "low": None, "high": None, "method": "not corrected", "note": note,
                        "n_scored": n_scored, "detector": detector, "labels_from": detector})
            continue
        try:
            row = corrected_rate_row(key, str(g["by"]), k, n_scored, n_blocked, counts,
                                     source, conf, name)
        except UsageError as exc:
            # One category the detector cannot tell apart must not sink the others: the
            # summary says why this one has no corrected rate.
            row = {"key": key, "by": g["by"], "raw_rate": k / n_scored, "rate": None,
                   "low": None, "high": None, "method": "not correctable",
                   "note": str(exc), "calibration": source, "n_scored": n_scored}
        row["detector"] = detector
        row["labels_from"] = detector
        out.append(row)
    return out


__all__ = [
    "CALIBRATION_KIND",
    "ConfusionCounts",
    "LabelItem",
    "build_calibration",
    "calibrate",
    "calibration_table",
    "check_usable",
    "confusion_counts",
    "corrected_rate_row",
    "corrected_rates",
    "default_calibration_path",
    "detect_labels",
    "load_calibration",
    "load_labels",
    "parse_detector_arg",
    "parse_label_line",
]
