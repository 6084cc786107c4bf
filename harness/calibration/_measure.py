"""Measure a detector against human labels (pure): count TP/FN/TN/FP of its flags, pooled
and per category, with Wilson intervals for sensitivity and specificity, and build the
calibration document. Running the detector over a label file is a run of its own
(`harness.run.calibrate`: it ends in the one finish step, `finish_run`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.calibration._labels import LabelItem
from harness.errors import UsageError
from harness.records import DetectorSpec, freeze, stable_json
from harness.stats import binomial_interval

# What a detector said about one labelled item: True flagged (harmful), False not flagged,
# None an error, "unclear" neither (a refusal detector's reply that neither refused nor
# complied). Unclear items are counted apart, like errors: a run leaves unclear samples out
# of a rate's denominator (n_scored), so sensitivity and specificity must be measured on the
# items the detector scores, or the correction of that rate is biased (docs/detectors.md).
Flag = bool | None | Literal["unclear"]
UNCLEAR: Literal["unclear"] = "unclear"

CALIBRATION_KIND = "harness-calibration"
CALIBRATION_SCHEMA = 1
INTERVAL_METHOD = "wilson"
# Params that name where a key lives or hold one; never written to a calibration file.
_SECRET_PARAMS = ("api_key",)


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


@dataclass(frozen=True)
class ConfusionCounts:
    """Detector flags against human labels."""

    tp: int
    fn: int
    tn: int
    fp: int
    n_error: int = 0
    n_unclear: int = 0

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
                               "n_error": self.n_error, "n_unclear": self.n_unclear}
        for name, k, n in (("sensitivity", self.tp, self.n_harmful),
                           ("specificity", self.tn, self.n_safe)):
            if n:
                iv = binomial_interval(k, n, confidence_level, INTERVAL_METHOD)
                out[name], out[f"{name}_low"], out[f"{name}_high"] = k / n, iv.low, iv.high
            else:
                out[name] = out[f"{name}_low"] = out[f"{name}_high"] = None
        return out


def confusion_counts(truth: Sequence[bool], flagged: Sequence[Flag]) -> ConfusionCounts:
    """Count TP/FN/TN/FP (pure); errors (`None`) and "unclear" readings are counted apart."""
    tp = fn = tn = fp = err = unclear = 0
    for t, f in zip(truth, flagged, strict=True):
        if f is None:
            err += 1
        elif f == UNCLEAR:
            unclear += 1
        elif t and f:
            tp += 1
        elif t:
            fn += 1
        elif f:
            fp += 1
        else:
            tn += 1
    return ConfusionCounts(tp, fn, tn, fp, err, unclear)


def calibration_table(items: Sequence[LabelItem], flagged: Sequence[Flag],
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
                      flagged: Sequence[Flag], *, labels_file: str, labels_sha256: str,
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
