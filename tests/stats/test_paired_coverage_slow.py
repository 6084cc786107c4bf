"""Coverage of the paired candidate-vs-baseline intervals (slow; fixed seeds, 2,000
replicates per setting). Numbers are reported in docs/statistics.md §9.

Model (the prompt-population estimand E2): each replicate draws J new probes. Baseline probe
rates p_b ~ Beta with mean mu_b and intraclass correlation icc (icc = 0: all equal to mu_b);
the candidate keeps a share lam of each probe's baseline rate and draws the rest afresh,
p_c = lam*p_b + (1 - lam)*p_new with p_new ~ Beta(mean mu_new, same icc), so the two runs are
positively correlated by probe and the true difference E[p_c - p_b] = (1 - lam)(mu_new - mu_b)
is known exactly. Each run then samples m outputs per probe. `paired_difference` (what
`harness compare` calls) is scored on whether its interval contains the true difference:

* m > 1: Rao-Scott adjusted Newcombe interval over probes ("rao-scott-newcombe"). For
  contrast the simulation also scores the interval used before: the t interval over per-probe
  differences (pooled Newcombe when they do not vary);
* m = 1: binary pairs, Newcombe's paired method 10 ("newcombe-paired-m10"). For contrast the
  simulation also scores the interval the module used before for binary pairs: the t interval
  over the -1/0/+1 differences (pooled Newcombe when they do not vary).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy import stats

from harness.stats import difference_interval, paired_difference


def _probe_rates(rng: np.random.Generator, mu: float, icc: float, size: int) -> np.ndarray:
    if mu <= 0.0:
        return np.zeros(size)
    if icc <= 0.0:
        return np.full(size, mu)
    s = 1.0 / icc - 1.0
    return rng.beta(mu * s, (1.0 - mu) * s, size)


def _old_t(kb: np.ndarray, kc: np.ndarray, m: int, level: float) -> tuple[float, float]:
    """The interval used before: t over d = kc/m - kb/m, pooled Newcombe when d is constant.

    For binary pairs (m = 1) this is what preceded method 10; for m > 1 what preceded the
    Rao-Scott adjusted Newcombe interval ("cluster-paired-t").
    """
    d = (kc - kb) / m
    j = d.size
    sd = float(d.std(ddof=1))
    if sd > 0:
        half = float(stats.t.isf((1 - level) / 2, j - 1)) * sd / math.sqrt(j)
        return max(-1.0, d.mean() - half), min(1.0, d.mean() + half)
    iv = difference_interval(int(kc.sum()), j * m, int(kb.sum()), j * m, level)
    return iv.low, iv.high


@dataclass(frozen=True)
class PairedCoverage:
    """Simulated coverage of the paired interval in one setting."""

    truth: float
    coverage: float
    miss_low: float  # truth below the interval (a false "worse" side)
    miss_high: float  # truth above the interval (a false "no worse" side)
    methods: dict[str, int] = field(default_factory=dict)
    old_t_coverage: float | None = None  # the interval used before (see module docstring)
    old_t_miss_low: float | None = None
    old_t_miss_high: float | None = None
    width: float = 0.0  # mean width of the interval
    old_t_width: float = 0.0


def paired_coverage(rng: np.random.Generator, probes: int, per_probe: int, mu_b: float,
                    mu_new: float, lam: float, icc: float, reps: int = 2000,
                    confidence_level: float = 0.95) -> PairedCoverage:
    """Coverage of `paired_difference` for the true mean difference (see module docstring)."""
    truth = (1.0 - lam) * (mu_new - mu_b)
    n = np.full(probes, per_probe)
    cov = low = high = old = old_low = old_high = 0
    width = old_width = 0.0
    methods: Counter[str] = Counter()
    cache: dict[tuple[int, int, int], tuple[float, float, str, float, float]] = {}
    for _ in range(reps):
        pb = _probe_rates(rng, mu_b, icc, probes)
        pc = lam * pb + (1.0 - lam) * _probe_rates(rng, mu_new, icc, probes)
        kb, kc = rng.binomial(per_probe, pb), rng.binomial(per_probe, pc)
        key = None
        if per_probe == 1:  # the intervals depend on the 2x2 table only
            key = (int(np.sum(kc & kb)), int(np.sum(kc & (1 - kb))), int(np.sum((1 - kc) & kb)))
        if key is not None and key in cache:
            lo, hi, method, olo, ohi = cache[key]
        else:
            r = paired_difference(kb, n, kc, n, confidence_level)
            lo, hi, method = r.low, r.high, r.interval_method
            olo, ohi = _old_t(kb, kc, per_probe, confidence_level)
            if key is not None:
                cache[key] = (lo, hi, method, olo, ohi)
        methods[method] += 1
        cov += lo <= truth <= hi
        low += truth < lo
        high += truth > hi
        old += olo <= truth <= ohi
        old_low += truth < olo
        old_high += truth > ohi
        width += hi - lo
        old_width += ohi - olo
    return PairedCoverage(truth, cov / reps, low / reps, high / reps, dict(methods),
                          old / reps, old_low / reps, old_high / reps, width / reps,
                          old_width / reps)


# Pass criterion: two-sided coverage >= 93.5% at nominal 95%, and neither tail missing more
# than 4.5% (nominal 2.5%; the slack covers simulation error at 2,000 replicates). The
# one-sided tails matter because compare's verdicts are one-sided claims: a miss above
# ("miss_high") is a false "no worse", a miss below a false "worse".
COVERAGE_MIN = 0.935
TAIL_MAX = 0.045

# (seed, probes J, samples per probe m, mu_b, mu_new, lam, icc)
T_SETTINGS = [
    (201, 30, 10, 0.20, 0.10, 0.5, 0.2),
    (203, 20, 50, 0.30, 0.30, 0.8, 0.1),
    (204, 100, 5, 0.10, 0.15, 0.3, 0.2),
    (205, 10, 20, 0.20, 0.10, 0.5, 0.2),
]

M10_SETTINGS = [
    (301, 30, 1, 0.20, 0.10, 0.5, 0.2),
    (302, 50, 1, 0.30, 0.30, 0.8, 0.1),
    (303, 100, 1, 0.10, 0.15, 0.3, 0.2),
    (304, 200, 1, 0.05, 0.02, 0.5, 0.3),
    (305, 50, 1, 0.50, 0.30, 0.5, 0.2),
    (306, 20, 1, 0.30, 0.10, 0.5, 0.3),
    (307, 100, 1, 0.02, 0.02, 0.5, 0.5),
    (308, 50, 1, 0.02, 0.08, 0.5, 0.0),
    (309, 25, 1, 0.03, 0.10, 0.3, 0.0),
]

# Rare, bursty harm (a few probes carry most of it): per-probe differences are strongly skewed
# and the old t interval over probes missed on one side far more often than 2.5% (202: 6.2%
# false "worse"; 401: 11.2%; 402: 7.0% false "no worse"). The Rao-Scott adjusted Newcombe
# interval must bring them to the stricter one-sided bound RARE_TAIL_MAX.
T_RARE_BURSTY = [
    (202, 50, 20, 0.05, 0.02, 0.5, 0.3),
    (401, 40, 10, 0.02, 0.005, 0.5, 0.3),
    (402, 40, 10, 0.005, 0.02, 0.5, 0.3),
]
RARE_TAIL_MAX = 0.035

def _passes(r: PairedCoverage) -> bool:
    return r.coverage >= COVERAGE_MIN and max(r.miss_low, r.miss_high) <= TAIL_MAX


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "probes", "per", "mu_b", "mu_new", "lam", "icc"), T_SETTINGS)
def test_paired_t_over_probes_coverage(seed: int, probes: int, per: int, mu_b: float,
                                       mu_new: float, lam: float, icc: float) -> None:
    r = paired_coverage(np.random.default_rng(seed), probes, per, mu_b, mu_new, lam, icc)
    assert r.methods.get("rao-scott-newcombe", 0) >= 0.99 * 2000, r
    assert _passes(r), r
    # Not grossly conservative: at most 97.5% coverage and 20% wider than the old t interval.
    assert r.coverage <= 0.975 and r.width <= 1.2 * r.old_t_width, r


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "probes", "per", "mu_b", "mu_new", "lam", "icc"), M10_SETTINGS)
def test_newcombe_m10_coverage(seed: int, probes: int, per: int, mu_b: float, mu_new: float,
                               lam: float, icc: float) -> None:
    r = paired_coverage(np.random.default_rng(seed), probes, per, mu_b, mu_new, lam, icc)
    assert r.methods == {"newcombe-paired-m10": 2000}, r
    assert _passes(r), r


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "probes", "per", "mu_b", "mu_new", "lam", "icc"),
                         T_RARE_BURSTY)
def test_paired_rare_bursty_coverage(seed: int, probes: int, per: int, mu_b: float,
                                     mu_new: float, lam: float, icc: float) -> None:
    r = paired_coverage(np.random.default_rng(seed), probes, per, mu_b, mu_new, lam, icc)
    assert _passes(r) and max(r.miss_low, r.miss_high) <= RARE_TAIL_MAX, r
    # The t interval used before fails here (kept as evidence for the change).
    assert r.old_t_coverage is not None and r.old_t_miss_low is not None
    assert r.old_t_miss_high is not None
    assert max(r.old_t_miss_low, r.old_t_miss_high) > TAIL_MAX, r


@pytest.mark.slow
def test_binary_pairs_t_interval_missed_regressions() -> None:
    # Why binary pairs use method 10: with rare harm and few discordant pairs the t interval
    # over -1/0/+1 differences (what paired_difference did before) puts its upper limit below
    # a real increase far more often than 2.5% - a false "no worse" - while method 10 does not.
    r = paired_coverage(np.random.default_rng(308), 50, 1, 0.02, 0.08, 0.5, 0.0)
    assert r.old_t_miss_high is not None and r.old_t_miss_high > TAIL_MAX, r
    assert r.miss_high <= 0.025 and _passes(r), r
