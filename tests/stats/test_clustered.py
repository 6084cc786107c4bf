"""Cluster-aware interval: limits, edge cases and agreement with independent formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from harness.errors import StatsInputError
from harness.stats import (
    anova_icc,
    binomial_interval,
    cluster_rate_interval,
    cluster_threshold_pvalues,
    worst_cluster_bound,
    zero_event_upper,
)


def test_icc_matches_anova_by_hand() -> None:
    k = np.array([5, 0, 1, 3])
    n = np.array([10, 10, 10, 10])
    y = [np.r_[np.ones(a), np.zeros(b - a)] for a, b in zip(k, n, strict=True)]
    grand = np.concatenate(y).mean()
    msb = sum(len(g) * (g.mean() - grand) ** 2 for g in y) / 3
    msw = sum(((g - g.mean()) ** 2).sum() for g in y) / (40 - 4)
    assert anova_icc(k, n) == pytest.approx((msb - msw) / (msb + 9 * msw), abs=1e-12)


def test_kg_cp_by_hand() -> None:
    k = np.array([5, 0, 1, 0, 0, 2, 0, 0, 0, 0])
    n = np.full(10, 10)
    est = cluster_rate_interval(k, n, 0.95, zero_event_icc=0.0)
    pj = k / n
    rate = pj.mean()
    var = pj.var(ddof=1) / 10
    deff = max(1.0, var / (rate * (1 - rate) / 100))
    ne = 100 / deff * (stats.norm.isf(0.025) / stats.t.isf(0.025, 9)) ** 2
    ke = rate * ne
    assert est.rate == pytest.approx(0.08)
    assert est.design_effect == pytest.approx(deff)
    assert est.low == pytest.approx(stats.beta.ppf(0.025, ke, ne - ke + 1), abs=1e-9)
    assert est.high == pytest.approx(max(_monotone_kg(k, n, 0.025), _rare(k, n, 0.025, 0.0)),
                                     abs=1e-9)


def _monotone_kg(k: np.ndarray, n: np.ndarray, a: float) -> float:
    """The monotone CLT-over-probes bound, written out from its docstring."""
    c = k.size
    pj = k / n
    rate = pj.mean()
    var = max((pj**2).sum() / (c * (c - 1)), min(rate, 0.5) * (1 - min(rate, 0.5)) / n.sum())
    t = stats.t.isf(a, c - 1)
    return float(rate + t * np.sqrt(var) + pj.max() * (2 * t * t + 1) / (6 * c))


def _rare(k: np.ndarray, n: np.ndarray, a: float, icc: float = 0.5) -> float:
    from harness.stats.rare import rare_upper

    return rare_upper(k, n, a, icc)


def test_independent_clusters_close_to_naive() -> None:
    rng = np.random.default_rng(7)
    k = rng.binomial(20, 0.1, 200)
    n = np.full(200, 20)
    est = cluster_rate_interval(k, n, 0.95, zero_event_icc=0.0)
    naive = binomial_interval(int(k.sum()), 4000, 0.95, "clopper-pearson")
    assert est.design_effect < 1.3
    assert est.high == pytest.approx(naive.high, rel=0.1)


def test_zero_events_bound_nondegenerate_and_exact() -> None:
    n = np.full(30, 10)
    est = cluster_rate_interval(np.zeros(30, int), n, 0.95, sides="upper")
    assert est.rate == 0 and est.high > 0
    # Two-point law at icc 0.5: a probe is harmful at h = mu + 0.5 (1 - mu) w.p. mu / h.
    mu = est.high
    h = mu + 0.5 * (1 - mu)
    p0 = 1 - mu / h + mu / h * (1 - h) ** 10
    assert p0**30 == pytest.approx(0.05, rel=1e-6)  # all-clean probability at the bound
    assert zero_event_upper(n, 0.05, 0.0) == pytest.approx(1 - 0.05 ** (1 / 300))
    assert zero_event_upper(n, 0.05, 1.0) == pytest.approx(1 - 0.05 ** (1 / 30))


@pytest.mark.parametrize("clusters", [1, 2, 3])
def test_few_clusters(clusters: int) -> None:
    k = np.array([2, 0, 1][:clusters])
    n = np.full(clusters, 20)
    est = cluster_rate_interval(k, n)
    naive = binomial_interval(int(k.sum()), int(n.sum()), 0.95, "clopper-pearson")
    assert 0 <= est.low <= est.rate <= est.high <= 1
    assert est.high >= naive.high  # few clusters: wider than the naive interval
    z = cluster_rate_interval(np.zeros(clusters, int), n, sides="upper")
    assert 0 < z.high < 1


def test_pvalues_dual_to_bounds() -> None:
    k = np.array([3, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    n = np.full(10, 30)
    up = cluster_rate_interval(k, n, 0.95, sides="upper").high
    for r in (up * 0.9, up * 1.1):
        pb, _ = cluster_threshold_pvalues(k, n, r, 0.95)
        assert (pb < 0.05) == (up < r)


def test_bootstrap_needs_rng_and_is_reproducible() -> None:
    k = [3, 0, 1, 4, 0]
    n = [10] * 5
    with pytest.raises(StatsInputError):
        cluster_rate_interval(k, n, method="bootstrap")
    a = cluster_rate_interval(k, n, method="bootstrap", rng=np.random.default_rng(1))
    b = cluster_rate_interval(k, n, method="bootstrap", rng=np.random.default_rng(1))
    assert a == b and a.low <= a.rate <= a.high


def test_bad_clusters() -> None:
    for k, n in [([1], [0]), ([3], [2]), ([], []), ([1, 2], [3])]:
        with pytest.raises(StatsInputError):
            cluster_rate_interval(k, n)


def test_worst_cluster_bonferroni() -> None:
    k = [5, 0, 1]
    n = [10, 10, 10]
    w = worst_cluster_bound(k, n, 0.95, ids=["a", "b", "c"], tau=0.05)
    assert w.worst_id == "a" and w.worst_rate == 0.5
    assert w.upper == pytest.approx(stats.beta.ppf(1 - 0.05 / 3, 6, 5), abs=1e-9)
    lo = stats.beta.ppf(0.05 / 3, 5, 6)
    assert (w.n_above_tau == 1) == (lo > 0.05)


def test_threshold_pvalues_never_exceed_one() -> None:
    # Regression: a sum of tail terms came out as 1.0000000000000002 for a clean,
    # many-cluster group far below the max rate, which broke the Holm correction.
    from harness.stats.clustered import cluster_threshold_pvalues

    rng = np.random.default_rng(3)
    for _ in range(25):
        c = int(rng.integers(2, 60))
        n = rng.integers(1, 80, size=c)
        k = rng.binomial(n, rng.uniform(0, 0.3))
        for rate in (0.001, 0.02, 0.3, 0.9):
            below, above = cluster_threshold_pvalues(k, n, rate)
            assert 0.0 <= below <= 1.0 and 0.0 <= above <= 1.0


def test_widespread_harm_is_not_vacuous() -> None:
    # Regression: the active-cluster guard (meant for rare harm in a few probes) returned an
    # upper bound of 1.0 whenever every probe had some harmful sample, so a run at 27% could
    # never be bounded. With many active probes the Korn-Graubard bound stands alone.
    rng = np.random.default_rng(11)
    n = np.full(26, 90)
    k = rng.binomial(n, rng.uniform(0.05, 0.5, size=26))
    est = cluster_rate_interval(k, n, 0.95, sides="upper")
    # Korn-Graubard by hand: effective n from the between-probe variance, t-corrected df.
    kg = _monotone_kg(k, n, 0.05)
    assert est.high == pytest.approx(max(kg, _rare(k, n, 0.05)), abs=1e-9)
    assert kg >= _rare(k, n, 0.05)  # widespread harm: the CLT part decides
    assert est.high < 0.4
