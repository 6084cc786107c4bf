"""Detector calibration against human labels, and judge-corrected rates.

`harness calibrate DETECTOR --labels FILE` runs a detector over human-labelled outputs (as a
run that samples nothing and ends in the one finish step: `harness.run.calibrate`) and
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

from harness.calibration._correct import (
    check_usable,
    corrected_rate_row,
    corrected_rates,
    load_calibration,
)
from harness.calibration._labels import LabelItem, load_labels, parse_label_line
from harness.calibration._measure import (
    CALIBRATION_KIND,
    UNCLEAR,
    ConfusionCounts,
    Flag,
    build_calibration,
    calibration_table,
    confusion_counts,
    default_calibration_path,
    parse_detector_arg,
)

__all__ = [
    "CALIBRATION_KIND",
    "UNCLEAR",
    "ConfusionCounts",
    "Flag",
    "LabelItem",
    "build_calibration",
    "calibration_table",
    "check_usable",
    "confusion_counts",
    "corrected_rate_row",
    "corrected_rates",
    "default_calibration_path",
    "load_calibration",
    "load_labels",
    "parse_detector_arg",
    "parse_label_line",
]
