"""Judge-corrected rates: a run summary's observed rates through a calibration file, with
`harness.stats.misclassification.rogan_gladen` (Rogan & Gladen 1978; interval per Lang &
Reiczigel 2014; see that module), only where the calibration applies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.calibration._measure import CALIBRATION_KIND
from harness.errors import InputError, StatsInputError, UsageError
from harness.stats.misclassification import rogan_gladen
from harness.taxonomy import OVER_REFUSAL


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


def _applicable_counts(doc: Mapping[str, Any], by: str, key: str, detector: str,
                       n_labelled: int, n_detectable: int, harm_categories: set[str],
                       ) -> tuple[Mapping[str, Any] | None, str, str]:
    """(the calibration counts that apply to one group, their source, "") or (None, "", why
    not): the detector must label all `n_detectable` samples, and the calibration must have
    measured the group's category (or, for `overall`, every harm category in it)."""
    cats: Mapping[str, Any] = doc.get("categories") or {}
    if n_labelled == 0:
        return None, "", f"the {detector} detector labels no sample of this group"
    if n_labelled < n_detectable:
        return None, "", (f"the {detector} detector labels {n_labelled} of {n_detectable} "
                          "scored samples here; other detectors' labels have other error rates")
    if by == "category":
        if _usable(cats.get(key)):
            return cats[key], f"category {key}", ""
        return None, "", f"the calibration has no harmful and safe items of category {key}"
    missing = sorted(c for c in harm_categories if not _usable(cats.get(c)))
    if missing:
        return None, "", ("the calibration did not measure " + ", ".join(missing)
                          + ", which are part of this group")
    return doc["pooled"], "pooled", ""


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
        counts, source, note = _applicable_counts(
            doc, str(g["by"]), key, detector, n_labelled, n_scored - n_blocked, harm_categories)
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
