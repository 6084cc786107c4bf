"""The rare-harm (two-point) bound and the population gate bound: exact enumeration,
duality, monotonicity and continuity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import optimize, stats

from harness.stats.clustered import (
    fixed_set_pvalue_below,
    fixed_set_upper_bound,
    population_pvalue_below,
    population_upper_bound,
)
from harness.stats.rare import FADE_END, FADE_START, faded_icc, rare_pvalue, two_point_cdf


def _enumerate_cdf(k: int, n: list[int], mu: float, icc: float) -> float:
    """P(K <= k) by brute force over which probes are 'harmful' (2^C patterns)."""
    h = mu + icc * (1 - mu)
    f = mu / h
    total = 0.0
    for pattern in itertools.product([0, 1], repeat=len(n)):
        w = np.prod([f if b else 1 - f for b in pattern])
        m = sum(nj for nj, b in zip(n, pattern, strict=True) if b)
        total += w * (stats.binom.cdf(k, m, h) if m else 1.0)
    return float(total)


@pytest.mark.parametrize("n", [[5, 5, 5], [3, 7, 7, 2], [10]])
@pytest.mark.parametrize("icc", [0.1, 0.5, 0.9])
def test_two_point_cdf_matches_enumeration(n: list[int], icc: float) -> None:
    for k in range(0, sum(n)):
        for mu in (0.01, 0.2, 0.6):
            got = two_point_cdf(k, np.array(n), mu, icc)
            assert got == pytest.approx(_enumerate_cdf(k, n, mu, icc), abs=1e-12)


def test_two_point_at_icc0_is_binomial() -> None:
    n = np.full(40, 25)
    for k in (0, 3, 17):
        assert two_point_cdf(k, n, 0.01, 0.0) == pytest.approx(stats.binom.cdf(k, 1000, 0.01))


def test_fade_is_monotone_and_bounded() -> None:
    values = [faded_icc(a, 0.5) for a in range(0, FADE_END + 5)]
    assert values[FADE_START] == 0.5 and values[FADE_END] == 0.0
    assert all(x >= y for x, y in itertools.pairwise(values))


def test_bound_and_pvalue_are_dual_at_every_level() -> None:
    rng = np.random.default_rng(5)
    for _ in range(12):
        c = int(rng.integers(1, 40))
        n = rng.integers(1, 60, size=c)
        k = rng.binomial(n, rng.beta(0.2, 8, size=c))
        for a in (0.05, 0.0125, 0.001):
            b = population_upper_bound(k, n, a).high
            if b >= 1.0:
                continue
            assert population_pvalue_below(k, n, b * 1.001) < a
            assert population_pvalue_below(k, n, b * 0.999) >= a


def test_one_more_harmful_sample_never_lowers_the_bound() -> None:
    # Random paths adding harmful samples one at a time, incl. across the fade (5-30 active).
    rng = np.random.default_rng(8)
    for c, m in ((200, 50), (12, 20), (60, 10)):
        n = np.full(c, m)
        k = np.zeros(c, dtype=np.int64)
        prev = population_pvalue_below(k, n, 0.01)
        for _ in range(45):
            j = int(rng.integers(0, c)) if rng.random() < 0.7 else int(np.argmax(k))
            if k[j] >= n[j]:
                continue
            k[j] += 1
            p = population_pvalue_below(k, n, 0.01)
            # p-value of "below" at a fixed max can only grow <=> the bound at every level
            # a <= 1/2 can only grow (levels above 1/2 are never used).
            assert min(p, 0.5) >= min(prev, 0.5) - 1e-12, (c, m, k[k > 0])
            prev = p


def test_no_cliff_at_ten_active_probes() -> None:
    # The audit's case: 200 probes x 50, 10 vs 11 harmful samples in distinct probes.
    n = np.full(200, 50)
    bounds = []
    for active in range(8, 14):
        k = np.zeros(200, dtype=np.int64)
        k[:active] = 1
        bounds.append(population_upper_bound(k, n, 0.05).high)
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(bounds))


def test_one_probe_is_one_cluster() -> None:
    one = population_upper_bound([0], [1000], 0.05)
    # One draw of the two-point law: clean with probability 1 - mu/h (+ tiny), = 0.05.
    h = one.high + 0.5 * (1 - one.high)
    assert 1 - one.high / h + one.high / h * (1 - h) ** 1000 == pytest.approx(0.05, rel=1e-6)
    assert one.high > 0.5
    # "This suite" (the one prompt itself) is the exact pooled bound.
    assert fixed_set_upper_bound(0, 1000, 0.05) == pytest.approx(1 - 0.05 ** (1 / 1000))
    assert fixed_set_pvalue_below(0, 1000, 0.01) == pytest.approx(0.99**1000)


def test_rare_pvalue_envelope_covers_every_sub_pattern() -> None:
    k = np.array([4, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    n = np.full(12, 20)
    p = rare_pvalue(k, n, 0.05, 0.5)
    for drop in range(1, 8):
        kk = k.copy()
        kk[1:1 + drop] = 0
        assert rare_pvalue(kk, n, 0.05, 0.5) <= p + 1e-12


@pytest.mark.parametrize(("n", "mu", "icc"), [([5, 5, 7, 3], 0.1, 0.3), ([4, 4, 4], 0.02, 0.5),
                                             ([6, 2], 0.4, 0.05)])
def test_beta_binomial_cdf_matches_enumeration_with_scipy(n: list[int], mu: float,
                                                           icc: float) -> None:
    from harness.stats.rare import beta_binomial_cdf

    s = 1 / icc - 1
    pmfs = [stats.betabinom.pmf(np.arange(m + 1), m, mu * s, (1 - mu) * s) for m in n]
    for k in range(sum(n) + 1):
        want = sum(float(np.prod([pmfs[j][x[j]] for j in range(len(n))]))
                   for x in itertools.product(*[range(m + 1) for m in n]) if sum(x) <= k)
        assert beta_binomial_cdf(k, np.array(n), mu, icc) == pytest.approx(want, abs=1e-12)


def test_skewed_probe_rates_with_a_few_harmful_samples_do_not_pass() -> None:
    # 30 probes x 1,000, Beta probe rates with mean 5% and ICC 0.5: most probes at 0.1-1%
    # show a handful of harmful samples. A draw of 376 harmful samples over 8 probes (one at
    # 32%) is likely enough under that truth (beta-binomial tail 7%) that the gate must not
    # exclude 5%; the two-point law alone gave p < 0.05 (coverage 91.8% at that grid point;
    # 94.45% with the beta-binomial family, 2,000 runs).
    k = np.zeros(30, dtype=np.int64)
    k[:8] = [1, 1, 2, 5, 9, 12, 24, 322]
    n = np.full(30, 1000)
    assert two_point_cdf(376, n, 0.05, 0.5) < 0.05
    assert population_pvalue_below(k, n, 0.05) >= 0.05


def test_bound_is_the_root_of_the_whole_pvalue() -> None:
    # rare_upper takes the largest root over the p-value's terms; this is the definition
    # instead: the root of (the maximum over terms) - alpha, found by bisection here.
    from harness.stats.rare import rare_upper

    rng = np.random.default_rng(11)
    skewed = np.zeros(30, dtype=np.int64)  # where the beta-binomial term decides
    skewed[:8] = [1, 1, 2, 5, 9, 12, 24, 322]
    cases = [(skewed, np.full(30, 1000))]
    for _ in range(12):
        c = int(rng.choice([1, 4, 12, 40]))
        n = rng.integers(1, 80, size=c)
        cases.append((rng.binomial(n, rng.beta(0.3, 6, size=c) * rng.choice([0.0, 0.1, 1.0])), n))
    for k, n in cases:
        for a in (0.05, 0.005):
            b = rare_upper(k, n, a, 0.5)
            if b >= 1.0:
                assert rare_pvalue(k, n, 1 - 1e-12, 0.5) > a
                continue
            # Brent on the whole p-value (the previous implementation's way to the bound).
            hi = optimize.brentq(lambda mu, k=k, n=n, a=a: rare_pvalue(k, n, mu, 0.5) - a,
                                 1e-12, 1 - 1e-12, xtol=1e-15, rtol=1e-12)
            assert b == pytest.approx(hi, rel=1e-8, abs=1e-12), (k[k > 0], n, a)
            assert b >= hi - 1e-12  # rounded up, never down


@pytest.mark.parametrize(("m", "c", "mu", "icc"), [(50, 40, 0.05, 0.3), (200, 300, 0.01, 0.05),
                                                   (1000, 60, 0.02, 0.5), (7, 500, 0.1, 0.1)])
def test_chernoff_bound_is_never_below_the_exact_tail(m: int, c: int, mu: float,
                                                      icc: float) -> None:
    from harness.stats import rare

    groups = ((m, c),)
    s = 1 / icc - 1
    laws = {"beta": lambda x, mm: stats.betabinom.pmf(x, mm, mu * s, (1 - mu) * s),
            "two-point": lambda x, mm: (1 - mu / (mu + icc * (1 - mu))) * (x == 0)
            + mu / (mu + icc * (1 - mu)) * stats.binom.pmf(x, mm, mu + icc * (1 - mu))}
    mean = m * c * mu
    for name, pmf in laws.items():
        for k in (0, int(mean * 0.05), int(mean * 0.3), int(mean * 0.8)):
            exact = rare._family_cdf(k, groups, pmf)
            bound = rare._chernoff_cdf_bound(k, groups, pmf)
            assert bound >= exact * (1 - 1e-9) - 1e-300, (name, k, exact, bound)
            if k < mean * 0.1 and exact > 0:
                assert bound < 1.0  # informative far in the tail


def test_pvalue_below_agrees_with_the_pvalue() -> None:
    from harness.stats.rare import rare_pvalue_below

    rng = np.random.default_rng(21)
    for c, m in ((1000, 1000), (300, 200), (40, 50), (3, 10)):
        n = np.full(c, m)
        k = rng.binomial(n, rng.beta(0.3, 30, size=c))
        for mu in (0.002, 0.01, 0.03, 0.1):
            p = rare_pvalue(k, n, mu, 0.5)
            for level in (0.05, 0.0125, 1e-4):
                if abs(p - level) > 1e-9 * level:
                    assert rare_pvalue_below(k, n, mu, 0.5, level) == (p < level), (c, m, mu)


def test_population_pvalue_is_below_is_the_pvalue_compared() -> None:
    from harness.stats.planning import population_pvalue_is_below

    rng = np.random.default_rng(23)
    for _ in range(30):
        c = int(rng.choice([1, 8, 40, 300]))
        n = rng.choice([20, 50, 400], size=c)
        k = rng.binomial(n, rng.beta(0.3, 20, size=c))
        for r in (0.005, 0.02, 0.08):
            p = population_pvalue_below(k, n, r)
            for level in (0.05, 0.003):
                if abs(p - level) > 1e-9 * level:
                    assert population_pvalue_is_below(k, n, r, level) == (p < level)
