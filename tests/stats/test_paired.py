"""Paired differences, McNemar exact test and the non-inferiority verdict."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from harness.errors import StatsInputError
from harness.stats import (
    Interval,
    mcnemar_exact,
    newcombe_paired_interval,
    noninferiority_verdict,
    paired_difference,
    rao_scott_paired_interval,
)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (5, 1), (1, 5), (10, 10), (0, 7), (12, 3)])
def test_mcnemar_matches_statsmodels(b: int, c: int) -> None:
    two, one = mcnemar_exact(b, c)
    if b + c:
        assert two == pytest.approx(mcnemar([[3, b], [c, 4]], exact=True).pvalue, abs=1e-12)
        assert one == pytest.approx(stats.binomtest(b, b + c, 0.5, "greater").pvalue)


def _rao_scott_reference(kb: np.ndarray, kc: np.ndarray, m: int, level: float
                         ) -> tuple[float, float]:
    """Rao-Scott adjusted Newcombe written again from statsmodels/scipy pieces (equal m).

    Union of (1) Wilson limits at n/deff_D with deff_D = Var(d-bar)/Var_binomial, floored at 1,
    square-and-add with r = 0, and (2) Wilson limits at each run's Korn-Graubard effective n,
    square-and-add with the Pearson correlation of the per-probe rates; both with the effective
    n shrunk by (z/t_{J-1})^2. Assumes both runs have some harm (no zero-event bound).
    """
    a = (1 - level) / 2
    j = kb.size
    n = j * m
    z = stats.norm.ppf(1 - a)
    shrink = (z / stats.t.ppf(1 - a, j - 1)) ** 2
    pb, pc = kb / m, kc / m
    p1, p2 = pc.mean(), pb.mean()

    def wilson(p: float, n_eff: float) -> tuple[float, float]:
        lo, hi = proportion_confint(p * n_eff, n_eff, alpha=2 * a, method="wilson")
        return float(lo), float(hi)

    def sqadd(l1: float, u1: float, l2: float, u2: float, r: float) -> tuple[float, float]:
        lo = p1 - p2 - np.sqrt((p1 - l1) ** 2 - 2 * r * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
        hi = p1 - p2 + np.sqrt((u1 - p1) ** 2 - 2 * r * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
        return float(lo), float(hi)

    deff = max(1.0, np.var(pc - pb, ddof=1) / j / ((p1 * (1 - p1) + p2 * (1 - p2)) / n))
    ne = n / deff * shrink
    lo1, hi1 = sqadd(*wilson(p1, ne), *wilson(p2, ne), 0.0)
    eff = []
    for p, rates in ((p1, pc), (p2, pb)):
        d_run = max(1.0, np.var(rates, ddof=1) / j / (p * (1 - p) / n))
        eff.append(wilson(p, n / d_run * shrink))
    r = stats.pearsonr(pb, pc)[0]
    lo2, hi2 = sqadd(*eff[0], *eff[1], float(r))
    return max(-1.0, min(lo1, lo2)), min(1.0, max(hi1, hi2))


@pytest.mark.parametrize(("seed", "j", "m", "p_base", "p_cand", "level"), [
    (1, 5, 10, 0.3, 0.2, 0.95), (2, 30, 10, 0.2, 0.1, 0.9), (3, 40, 10, 0.05, 0.08, 0.95),
    (4, 12, 50, 0.5, 0.5, 0.99), (5, 100, 5, 0.1, 0.15, 0.95)])
def test_rao_scott_interval_matches_independent_formula(seed: int, j: int, m: int,
                                                        p_base: float, p_cand: float,
                                                        level: float) -> None:
    rng = np.random.default_rng(seed)
    pb = rng.beta(p_base * 4, (1 - p_base) * 4, j)
    pc = np.clip(0.5 * pb + 0.5 * rng.beta(p_cand * 4, (1 - p_cand) * 4, j), 0, 1)
    kb, kc = rng.binomial(m, pb), rng.binomial(m, pc)
    assert kb.sum() > 0 and kc.sum() > 0
    n = np.full(j, m)
    res = paired_difference(kb, n, kc, n, level)
    assert res.interval_method == "rao-scott-newcombe"
    assert (res.low, res.high) == pytest.approx(_rao_scott_reference(kb, kc, m, level),
                                                abs=1e-10)
    assert res.difference == pytest.approx(np.mean(kc / m - kb / m))
    iv = rao_scott_paired_interval(kb, n, kc, n, level)
    assert (iv.low, iv.high, iv.estimate) == pytest.approx((res.low, res.high, res.difference))
    # One-sided: the limit at the full alpha, the other end trivial.
    up = rao_scott_paired_interval(kb, n, kc, n, 1 - (1 - level) / 2, sides="upper")
    assert up.low == -1.0 and up.high == pytest.approx(res.high)


def test_rao_scott_by_hand_and_wider_than_t_for_bursty_harm() -> None:
    # Two bursty baseline probes, the rest clean: the t interval is symmetric around -0.05,
    # the Rao-Scott interval reaches further down (the side of the rare probes).
    kb = np.array([6, 4, 0, 0, 0, 0, 0, 0, 0, 0])
    kc = np.array([3, 1, 0, 0, 1, 0, 0, 0, 0, 0])
    n = np.full(10, 10)
    res = paired_difference(kb, n, kc, n)
    d = kc / 10 - kb / 10
    lo, hi = stats.t.interval(0.95, 9, loc=d.mean(), scale=stats.sem(d))
    assert (res.low, res.high) == pytest.approx(_rao_scott_reference(kb, kc, 10, 0.95),
                                                abs=1e-10)
    assert res.low < lo and res.high > hi
    assert res.difference == pytest.approx(d.mean())
    assert res.discordant_candidate_only == 1 and res.discordant_baseline_only == 0


def test_rao_scott_rejects_bad_input() -> None:
    with pytest.raises(StatsInputError):
        rao_scott_paired_interval([1, 2], [10, 10], [1, 2], [10, 10])  # no variation
    with pytest.raises(StatsInputError):
        rao_scott_paired_interval([1, 2], [10, 10], [1], [10])


def test_paired_degenerate_falls_back() -> None:
    res = paired_difference([0] * 5, [10] * 5, [0] * 5, [10] * 5)
    assert res.low < 0 < res.high and "newcombe" in res.interval_method
    with pytest.raises(StatsInputError):
        paired_difference([0, 1], [10, 10], [0], [10])


@pytest.mark.parametrize(("low", "high", "verdict"), [
    (-0.05, -0.01, "better"), (0.001, 0.03, "worse"), (-0.01, 0.015, "no-worse-than-margin"),
    (-0.01, 0.05, "inconclusive")])
def test_noninferiority(low: float, high: float, verdict: str) -> None:
    assert noninferiority_verdict(Interval(low, high, "x", 0.9), 0.02) == verdict


# --- Newcombe (1998c) paired method 10 -------------------------------------------------------


def _method10_independent(a: int, b: int, c: int, d: int, alpha: float) -> tuple[float, float]:
    """Method 10 written out again from statsmodels' Wilson limits (not our _wilson).

    Newcombe RG (1998c) Stat. Med. 17:2635-2650: square-and-add of the Wilson intervals of the
    two marginal proportions with a correlation term phi; phi uses n11*n00 - n10*n01, reduced
    by n/2 (floored at 0) when positive, and is 0 when a margin is empty.
    """
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = proportion_confint(a + b, n, alpha=alpha, method="wilson")
    l2, u2 = proportion_confint(a + c, n, alpha=alpha, method="wilson")
    e, f, g, h = a + b, c + d, a + c, b + d
    cross = a * d - b * c
    if e * f * g * h == 0:
        phi = 0.0
    elif cross > n / 2:
        phi = (cross - n / 2) / np.sqrt(e * f * g * h)
    elif cross >= 0:
        phi = 0.0
    else:
        phi = cross / np.sqrt(e * f * g * h)
    delta = p1 - p2 - np.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    eps = p1 - p2 + np.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return max(-1.0, float(delta)), min(1.0, float(eps))


# Newcombe (1998c) Table III, method 10, 95% limits for tables (a, b, c, d) as transcribed in
# a third-party test suite (we did not have the paper's own text to check the transcription).
# They agree with the independent formula above to the 4 printed decimals, and the rows with
# a positive n11*n00 - n10*n01 (e.g. 27/0/0/27) distinguish the n/2-adjusted phi from the
# plain one, which would give [0, 0] there.
NEWCOMBE_TABLE_III = [
    ((36, 12, 2, 0), 0.0569, 0.3404), ((20, 12, 2, 16), 0.0562, 0.3292),
    ((18, 12, 2, 18), 0.0562, 0.3290), ((36, 14, 0, 0), 0.1528, 0.4167),
    ((35, 14, 0, 1), 0.1461, 0.4175), ((18, 14, 0, 18), 0.1441, 0.3963),
    ((2, 97, 1, 0), 0.8721, 0.9854), ((1, 97, 1, 1), 0.8736, 0.9850),
    ((0, 29, 1, 0), 0.6666, 0.9882), ((2, 98, 0, 0), 0.9178, 0.9945),
    ((1, 98, 0, 1), 0.9171, 0.9916), ((0, 30, 0, 0), 0.8395, 1.0),
    ((54, 0, 0, 0), -0.0664, 0.0664), ((53, 0, 0, 1), -0.0729, 0.0729),
    ((30, 0, 0, 24), -0.0358, 0.0358), ((29, 0, 0, 25), -0.0354, 0.0354),
    ((28, 0, 0, 26), -0.0352, 0.0352), ((27, 0, 0, 27), -0.0351, 0.0351),
]


@pytest.mark.parametrize(("table", "low", "high"), NEWCOMBE_TABLE_III)
def test_newcombe_m10_reproduces_table_iii(table: tuple[int, int, int, int], low: float,
                                           high: float) -> None:
    iv = newcombe_paired_interval(*table)
    a, b, c, d = table
    assert iv.estimate == pytest.approx((b - c) / (a + b + c + d))
    # Printed to 4 dp; (1, 97, 1, 1) computes to 0.87367 against a printed 0.8736.
    assert iv.low == pytest.approx(low, abs=1e-4)
    assert iv.high == pytest.approx(high, abs=1e-4)
    assert iv.method == "newcombe-paired-m10"


def test_newcombe_m10_fagerland_example() -> None:
    # Fagerland, Lydersen & Laake (2017) "Statistical Analysis of Contingency Tables", ch. 8,
    # Cavo et al. (2012) table as in the R package contingencytables (tests/testthat/
    # test-ch8.R): estimate -0.0621, 95% CI -0.1186 to -0.0046.
    iv = newcombe_paired_interval(59, 6, 16, 80)
    assert iv.estimate == pytest.approx(-0.0621, abs=5e-5)
    assert (iv.low, iv.high) == pytest.approx((-0.1186, -0.0046), abs=5e-5)


def test_newcombe_m10_matches_independent_formula() -> None:
    rng = np.random.default_rng(7)
    tables = [tuple(int(x) for x in rng.multinomial(int(rng.integers(1, 120)),
                                                   rng.dirichlet([0.5] * 4)))
              for _ in range(300)]
    tables += [(0, 0, 0, 1), (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 50),
               (0, 5, 0, 45), (0, 0, 5, 45), (3, 0, 0, 0), (0, 2, 3, 0), (10, 0, 0, 10)]
    for cl in (0.95, 0.9, 0.99):
        for t in tables:
            iv = newcombe_paired_interval(*t, confidence_level=cl)
            lo, hi = _method10_independent(*t, alpha=1 - cl)
            assert (iv.low, iv.high) == pytest.approx((lo, hi), abs=1e-10), (t, cl)
            assert iv.estimate is not None and iv.low <= iv.estimate <= iv.high


def test_newcombe_m10_symmetry_sides_and_errors() -> None:
    iv = newcombe_paired_interval(20, 9, 3, 18)
    swapped = newcombe_paired_interval(20, 3, 9, 18)
    assert (swapped.low, swapped.high) == pytest.approx((-iv.high, -iv.low))
    # A one-sided 95% bound is the matching end of the two-sided 90% interval.
    two90 = newcombe_paired_interval(20, 9, 3, 18, 0.90)
    up = newcombe_paired_interval(20, 9, 3, 18, 0.95, sides="upper")
    lo = newcombe_paired_interval(20, 9, 3, 18, 0.95, sides="lower")
    assert up.low == -1.0 and up.high == pytest.approx(two90.high)
    assert lo.high == 1.0 and lo.low == pytest.approx(two90.low)
    # No pairs discordant: still a proper interval around 0 (the t interval would be [0, 0]).
    zero = newcombe_paired_interval(0, 0, 0, 40)
    assert zero.low < 0 < zero.high
    for bad in [(0, 0, 0, 0), (-1, 2, 3, 4), (1.5, 2, 3, 4)]:
        with pytest.raises(StatsInputError):
            newcombe_paired_interval(*bad)  # type: ignore[arg-type]
    with pytest.raises(StatsInputError):
        newcombe_paired_interval(1, 2, 3, 4, confidence_level=95)


def test_paired_difference_uses_m10_for_one_sample_per_cell() -> None:
    rng = np.random.default_rng(3)
    xb = rng.random(60) < 0.3
    xc = rng.random(60) < 0.15
    ones = np.ones(60, dtype=int)
    res = paired_difference(xb.astype(int), ones, xc.astype(int), ones, 0.9)
    table = [[int(np.sum(xc & xb)), int(np.sum(xc & ~xb))],
             [int(np.sum(~xc & xb)), int(np.sum(~xc & ~xb))]]
    lo, hi = _method10_independent(table[0][0], table[0][1], table[1][0], table[1][1], 0.1)
    assert res.interval_method == "newcombe-paired-m10"
    assert (res.low, res.high) == pytest.approx((lo, hi), abs=1e-10)
    assert res.difference == pytest.approx(xc.mean() - xb.mean())
    assert res.discordant_candidate_only == table[0][1]
    assert res.discordant_baseline_only == table[1][0]
    assert res.p_value_two_sided == pytest.approx(mcnemar(table, exact=True).pvalue)
    # More than one sample in any cell: back to the t interval over cells.
    n2 = ones.copy()
    n2[0] = 2
    res2 = paired_difference(xb.astype(int), n2, xc.astype(int), ones, 0.9)
    assert res2.interval_method == "rao-scott-newcombe"
