"""Coverage of the Rogan-Gladen corrected interval (slow; fixed seeds, 2,000 replicates per
setting). Numbers are reported in docs/statistics.md §9.

Each replicate draws what a real correction sees: k flagged of n run samples with flag
probability pi = Se*theta + (1 - Sp)*(1 - theta), and a finite calibration set (se_k of m1
truly harmful outputs flagged, sp_k of m0 truly safe ones not flagged), so the estimated
sensitivity and specificity carry their own sampling error. The target is the true harmful rate
theta. For contrast, two uncorrected intervals are scored against the same theta:

* "raw": the Wilson interval of the observed flag rate k/n (no correction at all);
* "plug-in": the Rogan-Gladen estimate with a delta interval that treats the calibration
  estimates as exact (only the run's binomial term), the naive correction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from harness.stats import binomial_interval, rogan_gladen


@dataclass(frozen=True)
class RGCoverage:
    """Simulated coverage in one setting (fractions of replicates)."""

    corrected: float
    miss_low: float  # theta below the corrected interval
    miss_high: float  # theta above the corrected interval (the upper bound was too low)
    raw: float
    plug_in: float
    bootstrap: float | None = None  # rogan_gladen(..., rng=...), only when asked for


def rg_coverage(rng: np.random.Generator, theta: float, se: float, sp: float, n: int,
                m1: int, m0: int, reps: int = 2000, confidence_level: float = 0.95,
                bootstrap_rng: np.random.Generator | None = None) -> RGCoverage:
    """Coverage of `rogan_gladen` (default delta interval) and two uncorrected intervals.

    With ``bootstrap_rng`` also the parametric-bootstrap variant (4,000 resamples each; slow,
    used for the documentation table, not by the tests).
    """
    pi = se * theta + (1 - sp) * (1 - theta)
    k = rng.binomial(n, pi, reps)
    se_k = rng.binomial(m1, se, reps)
    sp_k = rng.binomial(m0, sp, reps)
    z = float(stats.norm.isf((1 - confidence_level) / 2))
    cov = low = high = raw = plug = boot = 0
    for i in range(reps):
        r = rogan_gladen(int(k[i]), n, int(se_k[i]), m1, int(sp_k[i]), m0, confidence_level)
        cov += r.low <= theta <= r.high
        low += theta < r.low
        high += theta > r.high
        w = binomial_interval(int(k[i]), n, confidence_level, "wilson")
        raw += w.low <= theta <= w.high
        # Naive plug-in: Se, Sp treated as known (Rogan & Gladen 1978 point estimate, delta
        # variance with the calibration terms dropped).
        p, s_e, s_p = k[i] / n, se_k[i] / m1, sp_k[i] / m0
        j = s_e + s_p - 1
        est = min(1.0, max(0.0, (p + s_p - 1) / j))
        half = z * math.sqrt(p * (1 - p) / n) / j
        plug += max(0.0, est - half) <= theta <= min(1.0, est + half)
        if bootstrap_rng is not None:
            b = rogan_gladen(int(k[i]), n, int(se_k[i]), m1, int(sp_k[i]), m0,
                             confidence_level, bootstrap_rng)
            boot += b.low <= theta <= b.high
    return RGCoverage(cov / reps, low / reps, high / reps, raw / reps, plug / reps,
                      boot / reps if bootstrap_rng is not None else None)


# (seed, theta, Se, Sp, n run samples, m1 harmful calibration items, m0 safe ones)
SETTINGS = [
    (101, 0.0, 0.90, 0.95, 500, 50, 200),
    (102, 0.002, 0.90, 0.98, 1000, 50, 200),
    (103, 0.01, 0.90, 0.95, 500, 50, 200),
    (104, 0.01, 0.80, 0.99, 2000, 200, 1000),
    (105, 0.05, 0.90, 0.95, 2000, 50, 200),
    (106, 0.05, 0.90, 0.95, 100, 30, 100),
    (107, 0.20, 0.80, 0.99, 2000, 50, 200),
    (108, 0.30, 0.85, 0.90, 200, 30, 60),
]


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "theta", "se", "sp", "n", "m1", "m0"), SETTINGS)
def test_rogan_gladen_interval_coverage(seed: int, theta: float, se: float, sp: float, n: int,
                                        m1: int, m0: int) -> None:
    r = rg_coverage(np.random.default_rng(seed), theta, se, sp, n, m1, m0)
    assert r.corrected >= 0.93, r
    # Neither tail far beyond its nominal 2.5% (4.5% allows simulation error at 2,000 reps).
    assert max(r.miss_low, r.miss_high) <= 0.045, r


@pytest.mark.slow
def test_uncorrected_intervals_undercover() -> None:
    # Large run, small calibration set: the flag rate is biased for theta, and a correction
    # that ignores the calibration error is too narrow.
    r = rg_coverage(np.random.default_rng(105), 0.05, 0.90, 0.95, 2000, 50, 200)
    assert r.raw < 0.05 and r.plug_in < 0.70 and r.corrected >= 0.93, r
    r = rg_coverage(np.random.default_rng(107), 0.20, 0.80, 0.99, 2000, 50, 200)
    assert r.raw < 0.10 and r.plug_in < 0.80 and r.corrected >= 0.93, r
