"""Over-dispersed count tests: against statsmodels and exact sums, and by simulation of
negative-binomial days under nightly looks through `evaluate_signals`, the code `watch
status` runs (skip rules and budget split included)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from scipy import special, stats

from harness.errors import StatsInputError
from harness.stats.overdispersion import (
    MIN_BASELINE_EVENTS,
    MIN_DAILY_SHAPE,
    RATE_UPPER_Z,
    baseline_dispersion,
    histogram_dispersion,
    report_spike_test,
    score_shift_test,
)
from harness.watch._records import WatchDefinition
from harness.watch.production import TESTED_SIGNALS
from harness.watch.simulate import REPORT_SPIKE_GRID, report_alarm_share


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


def _definition(days: int = 30) -> WatchDefinition:
    """A watch with the default budgets: drift_alpha 0.05, half for the report test."""
    return WatchDefinition(name="fa", suite="-", target="sim", max_rate=0.02, days=days)


REPORT_LEVEL = 0.05 / len(TESTED_SIGNALS)
"""The report test's share of the default production budget (its nominal level)."""


@pytest.mark.parametrize(("phi", "per_day"), [(1.0, 10.0), (3.0, 10.0)])
def test_thirty_nightly_looks_keep_false_alarms_under_the_budget_and_catch_a_spike(
        phi: float, per_day: float) -> None:
    """Through evaluate_signals (what `watch status` runs, skip rules included)."""
    rng = np.random.default_rng([7, int(phi)])
    fa = report_alarm_share(_definition(), rng, phi=phi, reports_per_day=per_day, reps=200)
    # 200 watches: the level 0.025 plus 2.5 Monte Carlo standard errors
    assert fa <= REPORT_LEVEL + 2.5 * np.sqrt(REPORT_LEVEL * (1 - REPORT_LEVEL) / 200)
    assert report_alarm_share(_definition(), rng, phi=phi, reports_per_day=per_day,
                              reps=60, spike=4.0) >= 0.4


def test_a_bursty_baseline_is_not_tested_and_says_why() -> None:
    """Days that are mostly quiet with rare bursts (NB shape < 1): the tail cannot be bounded
    from the baseline, so no report alarm, however high a later day, and the note says so."""
    from harness.watch.ingest import DailySignal
    from harness.watch.production import evaluate_signals
    from harness.watch.simulate import SIM_START

    counts = [0, 0, 45, 0, 1, 0, 0, 60, 0, 0, 2, 0, 0, 30, 400]
    rows = [DailySignal(SIM_START + timedelta(days=i), 10_000, c) for i, c in enumerate(counts)]
    disp = baseline_dispersion(counts[:14], [10_000.0] * 14)
    assert disp.events >= MIN_BASELINE_EVENTS and disp.daily_shape < MIN_DAILY_SHAPE
    assert not disp.testable
    section, alarms = evaluate_signals(_definition(), rows)
    assert not section["baseline"]["tested"] and "come in bursts" in section["baseline"]["note"]
    assert not [a for a in alarms if a.signal == "user-reports"]
    # The same spike against a steady baseline alarms.
    steady = [DailySignal(r.day, r.traffic, 10 if i < 14 else r.reports)
              for i, r in enumerate(rows)]
    assert [a.signal for a in evaluate_signals(_definition(), steady)[1]] == ["user-reports"]


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
@pytest.mark.parametrize(("phi", "per_day"), REPORT_SPIKE_GRID)
def test_false_alarm_grid(phi: float, per_day: float) -> None:
    """The grid of docs/watch.md (bench/report_spike_grid.py: 14 baseline days, 30 nightly
    looks, the report test's level 0.025) through evaluate_signals: within Monte Carlo error
    of the level at every point."""
    rng = np.random.default_rng([11, int(phi * 10), int(per_day * 10)])
    fa = report_alarm_share(_definition(), rng, phi=phi, reports_per_day=per_day, reps=1500)
    assert fa <= REPORT_LEVEL + 2.5 * np.sqrt(REPORT_LEVEL * (1 - REPORT_LEVEL) / 1500)
