"""Over-dispersed count tests: against statsmodels and exact sums, and by simulation of
negative-binomial days under nightly looks (the same functions `watch ingest` alarms use)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from harness.errors import StatsInputError
from harness.stats.drift import look_alpha
from harness.stats.overdispersion import (
    RATE_UPPER_Z,
    baseline_dispersion,
    histogram_dispersion,
    report_spike_test,
    score_shift_test,
)


def test_dispersion_is_the_quasi_poisson_scale_of_statsmodels() -> None:
    sm = pytest.importorskip("statsmodels.api")
    y = np.array([8, 2, 4, 2, 13, 6, 11, 11, 11, 7, 8, 8, 5, 7], dtype=float)
    t = np.array([9450, 11492, 9005, 9100, 11800, 8200, 8600, 10100, 10600, 9900, 11000,
                  9700, 8100, 8800], dtype=float)
    fit = sm.GLM(y, np.ones((y.size, 1)), family=sm.families.Poisson(),
                 offset=np.log(t)).fit()
    d = baseline_dispersion(y, t)
    assert d.phi_hat == pytest.approx(fit.pearson_chi2 / fit.df_resid, rel=1e-9)
    assert d.rate == pytest.approx(float(np.exp(fit.params[0])), rel=1e-9)
    assert d.phi_upper == pytest.approx(
        max(1.0, fit.pearson_chi2 / stats.chi2.ppf(0.1, y.size - 1)), rel=1e-9)


def test_spike_p_value_is_the_negative_binomial_tail_by_exact_summation() -> None:
    y = np.array([30, 10, 50, 20, 40, 15, 35], dtype=float)
    t = np.full(7, 10_000.0)
    d = baseline_dispersion(y, t)
    assert d.phi_upper > 1
    res = report_spike_test(d, 60, 12_000)
    lam = d.rate + RATE_UPPER_Z * np.sqrt(d.phi_upper * d.rate / d.exposure)
    mu = lam * 12_000
    r = mu / (d.phi_upper - 1)
    p = r / (r + mu)
    # P(Y >= 60) = 1 - sum_{k < 60} C(k + r - 1, k) p^r (1 - p)^k, summed term by term
    ks = np.arange(60)
    log_pmf = (special.gammaln(ks + r) - special.gammaln(r) - special.gammaln(ks + 1)
               + r * np.log(p) + ks * np.log1p(-p))
    assert res.p_value == pytest.approx(1.0 - float(np.exp(log_pmf).sum()), rel=1e-7)
    assert res.ratio == pytest.approx((60 / 12_000) / d.rate)
    assert report_spike_test(d, 0, 12_000).p_value == 1.0


def test_without_dispersion_the_test_is_poisson() -> None:
    d = baseline_dispersion([10, 10, 10, 10], [1000.0] * 4)  # X^2 = 0: phi = 1
    assert d.phi_upper == 1.0
    lam = d.rate + RATE_UPPER_Z * np.sqrt(d.rate / d.exposure)
    assert report_spike_test(d, 25, 1000).p_value == pytest.approx(
        float(stats.poisson.sf(24, lam * 1000)), rel=1e-9)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(StatsInputError, match="at least 2 days"):
        baseline_dispersion([3], [100])
    with pytest.raises(StatsInputError):
        baseline_dispersion([3, -1], [100, 100])
    with pytest.raises(StatsInputError):
        baseline_dispersion([3, 1], [100, 0])


def test_score_shift_without_dispersion_is_pearsons_chi_square() -> None:
    base = [400, 700, 450, 240, 100, 35, 7, 1, 0, 0]
    day = [300, 500, 500, 300, 150, 60, 20, 5, 0, 0]
    res = score_shift_test(base, day, 1.0)
    chi2, p, dof, _ = stats.chi2_contingency(np.array([base, day])[:, :8], correction=False)
    assert (res.statistic, res.df) == (pytest.approx(chi2), dof)
    assert res.p_value == pytest.approx(p)
    assert score_shift_test(base, day, 4.0).statistic == pytest.approx(chi2 / 4)
    # identical days have no between-day dispersion beyond multinomial noise
    assert histogram_dispersion([base, base, base]) == 1.0


def _false_alarm_rate(phi: float, per_day: float, *, baseline_days: int = 14, looks: int = 30,
                      alpha: float = 0.05, reps: int = 300, spike: float = 1.0,
                      seed: int = 7) -> float:
    """Share of simulated watches with any report alarm (a spike from the middle look on)."""
    rng = np.random.default_rng(seed)
    rate = per_day / 10_000
    hits = 0
    for _ in range(reps):
        traffic = rng.integers(7_000, 13_000, size=baseline_days + looks).astype(float)
        mu = rate * traffic * np.where(np.arange(traffic.size) >= baseline_days + looks // 2,
                                       spike, 1.0)
        if phi > 1:
            size = mu / (phi - 1)
            y = rng.negative_binomial(size, size / (size + mu)).astype(float)
        else:
            y = rng.poisson(mu).astype(float)
        d = baseline_dispersion(y[:baseline_days], traffic[:baseline_days])
        for look in range(1, looks + 1):
            i = baseline_days + look - 1
            if report_spike_test(d, y[i], traffic[i]).p_value <= look_alpha(alpha, look, looks):
                hits += 1
                break
    return hits / reps


@pytest.mark.parametrize(("phi", "per_day"), [(1.0, 10.0), (3.0, 10.0)])
def test_thirty_nightly_looks_keep_false_alarms_near_the_budget_and_catch_a_spike(
        phi: float, per_day: float) -> None:
    fa = _false_alarm_rate(phi, per_day)
    # 300 watches: the budget 0.05 plus 2.5 Monte Carlo standard errors (0.032)
    assert fa <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / 300)
    assert _false_alarm_rate(phi, per_day, spike=4.0, reps=100) >= 0.6


def test_a_poisson_test_would_not_hold_under_over_dispersion() -> None:
    """Why the dispersion matters: with phi forced to 1 the same data alarm far too often."""
    import harness.stats.overdispersion as od

    rng = np.random.default_rng(3)
    mu, phi = 20.0, 6.0
    size = mu / (phi - 1)
    y = rng.negative_binomial(size, size / (size + mu), size=44).astype(float)
    t = np.full(44, 10_000.0)
    honest = baseline_dispersion(y[:14], t[:14])
    naive = od.Dispersion(honest.rate, 1.0, 1.0, 14, honest.events, honest.exposure)
    level = 0.05 / 60
    n_naive = sum(report_spike_test(naive, y[i], 10_000).p_value <= level for i in range(14, 44))
    n_honest = sum(report_spike_test(honest, y[i], 10_000).p_value <= level
                   for i in range(14, 44))
    assert n_naive > n_honest


@pytest.mark.slow
@pytest.mark.parametrize(("phi", "per_day"), [(1.0, 2.0), (1.0, 50.0), (2.0, 10.0),
                                              (5.0, 10.0), (5.0, 50.0), (10.0, 30.0)])
def test_false_alarm_grid(phi: float, per_day: float) -> None:
    """The grid of docs/watch.md (baseline 14 days, 30 looks, budget 0.05): within Monte
    Carlo error of the budget where the baseline holds >= 20 reports."""
    fa = _false_alarm_rate(phi, per_day, reps=1500, seed=11)
    assert fa <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / 1500)
