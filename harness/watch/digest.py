"""Pure summaries of one run's records for the watch ledger, and run-vs-reference tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.detectors.rules import is_refusal
from harness.records import SampleRecord
from harness.stats.drift import distribution_shift, proportion_shift
from harness.taxonomy import OVER_REFUSAL

"""Over-refusal controls measure the opposite failure; like a run's `overall` rate, the
watch's harmful rate leaves them out."""


@dataclass(frozen=True)
class RunDigest:
    """What the watch needs from one run's records."""

    n: int
    n_harmful: int
    n_blocked: int
    n_error: int
    n_refused: int
    n_all: int
    models: tuple[str, ...]
    fingerprints: tuple[str, ...]
    scores: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    lengths: tuple[float, ...] = ()

    @property
    def n_scored(self) -> int:
        """Samples with an answer (all categories): the refusal-rate denominator."""
        return self.n_all - self.n_error

    @property
    def response_chars_median(self) -> float | None:
        return float(np.median(self.lengths)) if self.lengths else None


def _refused(r: SampleRecord) -> bool:
    if r.outcome == "blocked":
        return True
    for d in r.detectors:
        if d.name == "refusal" and "refused" in d.extra:
            return bool(d.extra["refused"])
    return is_refusal(r.response) if r.response is not None else False


def digest_records(records: Iterable[SampleRecord]) -> RunDigest:
    """Counts, identities, detector scores and output lengths of one run."""
    n = k = blocked = errors = refused = total = 0
    models: set[str] = set()
    fps: set[str] = set()
    scores: dict[str, list[float]] = {}
    lengths: list[float] = []
    for r in records:
        total += 1
        if r.model:
            models.add(r.model)
        if r.system_fingerprint:
            fps.add(r.system_fingerprint)
        if r.outcome == "error":
            errors += 1
            continue
        refused += _refused(r)
        chars = r.response_chars if r.response_chars is not None else (
            len(r.response) if r.response is not None else None)
        if chars is not None:
            lengths.append(float(chars))
        for d in r.detectors:
            if d.error is None:
                scores.setdefault(d.name, []).append(float(d.score))
        if r.category == OVER_REFUSAL or str(r.outcome) == "unclear":
            # unclear (neither refused nor complied) is not scored: never counted as safe
            continue
        n += 1
        k += r.outcome == "harmful"
        blocked += r.outcome == "blocked"
    return RunDigest(n, k, blocked, errors, refused, total, tuple(sorted(models)),
                     tuple(sorted(fps)), {name: tuple(v) for name, v in scores.items()},
                     tuple(lengths))


def compare_to_reference(reference: RunDigest, current: RunDigest) -> dict[str, dict[str, Any]]:
    """Per-run drift tests of ``current`` against the segment's reference run.

    ``score:<detector>``: two-sample KS of that detector's scores; ``length``: KS of output
    lengths; ``refusal``: Fisher's exact test of the refusal rate. p-values are raw; the
    watch evaluation spends its false-alarm budget over looks and detectors.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(reference.scores) & set(current.scores)):
        res = distribution_shift(reference.scores[name], current.scores[name], method="ks")
        out[f"score:{name}"] = {"statistic": res.statistic, "p_value": res.p_value,
                                "method": res.method, "n_ref": len(reference.scores[name]),
                                "n_cur": len(current.scores[name]),
                                "mean_ref": float(np.mean(reference.scores[name])),
                                "mean_cur": float(np.mean(current.scores[name]))}
    if reference.lengths and current.lengths:
        res = distribution_shift(reference.lengths, current.lengths, method="ks")
        out["length"] = {"statistic": res.statistic, "p_value": res.p_value,
                         "method": res.method,
                         "median_ref": float(np.median(reference.lengths)),
                         "median_cur": float(np.median(current.lengths))}
    if reference.n_scored and current.n_scored:
        res = proportion_shift(reference.n_refused, reference.n_scored, current.n_refused,
                               current.n_scored)
        out["refusal"] = {"statistic": res.statistic, "p_value": res.p_value,
                          "method": res.method,
                          "rate_ref": reference.n_refused / reference.n_scored,
                          "rate_cur": current.n_refused / current.n_scored}
    return out
