"""Tests of daily production counts against a baseline, allowing for over-dispersion (pure).

Daily user-report counts are not Poisson: reports cluster (one bad answer shared widely, a
news story, a weekday effect), so their day-to-day variance is a multiple ``phi`` of the
Poisson variance. A Poisson test then raises false alarms almost every week. Here a day's
count is compared with a negative-binomial prediction from the baseline days:

* the dispersion ``phi`` is estimated from the baseline by Pearson's statistic,
  ``X^2 / (B - 1)`` with ``X^2 = sum_i (y_i - lambda T_i)^2 / (lambda T_i)`` (the
  quasi-Poisson scale; McCullagh & Nelder, *Generalized Linear Models*, 2nd ed., sec. 4.5),
  and the test uses an *upper* confidence bound ``X^2 / chi2_{B-1}(0.1)``, floored at 1: a
  short baseline often under-estimates phi, and an under-estimated phi is a false alarm;
* the baseline rate is replaced by its upper 90% bound ``lambda + 1.2816 sqrt(phi lambda /
  T_base)`` (its quasi-likelihood standard error), so an unlucky quiet baseline does not
  make an ordinary day look like a spike;
* the day's count ``y`` has p-value ``P(Y >= y)`` for ``Y ~ NB(mean mu, variance phi mu)``,
  ``mu = lambda T_day`` (NB2 with size ``mu / (phi - 1)``; Poisson when phi = 1).

The day's histogram of classifier scores is compared with the baseline's by Pearson's
chi-square of homogeneity, divided by an upper bound of the between-day dispersion of the
baseline days' histograms (the design-effect adjustment of Rao & Scott 1981).

Looking every night: each look is a test at its own level from a budget spent over looks
(`harness.stats.drift.look_alpha`); the union bound keeps the chance of any false alarm over
the watch at or below the budget, as far as each day's test holds its level. That is an
approximation when phi is large and the baseline has few events (the dispersion is then
barely identifiable); tests/stats/test_overdispersion.py measures the false-alarm rate by
simulation of negative-binomial days under 30 nightly looks, and docs/watch.md gives the
grid. A baseline with fewer than `MIN_BASELINE_EVENTS` reports, or whose days are too
bursty to bound (`MIN_DAILY_SHAPE`), is not tested at all (`Dispersion.testable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from harness.errors import StatsInputError

PHI_UPPER_QUANTILE = 0.1
"""Lower chi-square quantile used for the upper confidence bound of the dispersion."""
RATE_UPPER_Z = 1.2816
"""Normal quantile (0.9) of the upper bound of the baseline rate."""
MIN_BASELINE_EVENTS = 20
"""Baselines with fewer reports than this are not tested (the dispersion is unknowable)."""
MIN_DAILY_SHAPE = 1.0
"""Baselines whose days look burstier than this are not tested: the negative-binomial shape
of an average day, ``mean daily count / (phi_upper - 1)``, below 1 means a J-shaped day
(mostly quiet, with rare bursts) whose tail 14 or so baseline days cannot bound. Measured:
without this rule the watch's false-alarm share reached 0.087 against a budget of 0.025
(phi 50, 10 reports a day; docs/watch.md)."""


@dataclass(frozen=True)
class Dispersion:
    """A baseline's pooled rate and dispersion."""

    rate: float
    """Pooled events per unit of exposure (reports per request)."""
    phi_hat: float
    """Pearson estimate of the dispersion (1 = Poisson)."""
    phi_upper: float
    """The upper confidence bound of phi used by the tests (at least 1)."""
    days: int
    events: float
    exposure: float

    @property
    def daily_shape(self) -> float:
        """Negative-binomial shape of an average baseline day at the dispersion bound
        (infinite when the bound is Poisson): below `MIN_DAILY_SHAPE` it is not tested."""
        if self.phi_upper <= 1.0 + 1e-9:
            return float("inf")
        return (self.events / self.days) / (self.phi_upper - 1.0)

    @property
    def testable(self) -> bool:
        """Whether spike tests against this baseline hold their level (measured)."""
        return self.events >= MIN_BASELINE_EVENTS and self.daily_shape >= MIN_DAILY_SHAPE


@dataclass(frozen=True)
class SpikeTest:
    """One day's count against the baseline."""

    p_value: float
    ratio: float
    """The day's rate over the baseline rate (inf when the baseline has no events)."""
    expected: float
    observed: float
    phi: float
    method: str = ("negative-binomial predictive test (upper bounds of the baseline rate "
                   "and quasi-Poisson dispersion)")


def _check_counts(events: Sequence[float], exposure: Sequence[float]) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    y = np.asarray(events, dtype=float)
    t = np.asarray(exposure, dtype=float)
    if y.shape != t.shape or y.ndim != 1:
        raise StatsInputError("events and exposure must be equal-length sequences")
    if np.any(y < 0) or np.any(t <= 0) or not np.all(np.isfinite(y)) or not np.all(
            np.isfinite(t)):
        raise StatsInputError("events must be >= 0 and exposure > 0 (finite)")
    return y, t


def baseline_dispersion(events: Sequence[float], exposure: Sequence[float]) -> Dispersion:
    """Pooled rate and quasi-Poisson dispersion of the baseline days (at least 2 days)."""
    y, t = _check_counts(events, exposure)
    if y.size < 2:
        raise StatsInputError(f"a baseline needs at least 2 days, got {y.size}")
    rate = float(y.sum() / t.sum())
    df = y.size - 1
    if rate > 0:
        mu = rate * t
        x2 = float(np.sum((y - mu) ** 2 / mu))
    else:
        x2 = 0.0
    phi_hat = x2 / df
    phi_upper = max(1.0, x2 / float(stats.chi2.ppf(PHI_UPPER_QUANTILE, df))) if x2 > 0 else 1.0
    return Dispersion(rate, phi_hat, phi_upper, int(y.size), float(y.sum()), float(t.sum()))


def report_spike_test(baseline: Dispersion, events: float, exposure: float) -> SpikeTest:
    """One-sided test that a day's event rate is above the baseline's (over-dispersed)."""
    if events < 0 or exposure <= 0:
        raise StatsInputError("events must be >= 0 and exposure > 0")
    phi = baseline.phi_upper
    rate_upper = baseline.rate + RATE_UPPER_Z * float(
        np.sqrt(phi * baseline.rate / baseline.exposure))
    mu = rate_upper * exposure
    y = float(np.ceil(events))
    if mu <= 0:
        p = 0.0 if y > 0 else 1.0
    elif phi <= 1.0 + 1e-9:
        p = float(stats.poisson.sf(y - 1, mu))
    else:
        size = mu / (phi - 1.0)
        p = float(stats.nbinom.sf(y - 1, size, size / (size + mu)))
    ratio = (events / exposure) / baseline.rate if baseline.rate > 0 else (
        float("inf") if events > 0 else 1.0)
    return SpikeTest(p_value=min(max(p, 0.0), 1.0), ratio=ratio,
                     expected=baseline.rate * exposure, observed=float(events), phi=phi)


@dataclass(frozen=True)
class ShiftTest:
    """A day's score histogram against the baseline's."""

    p_value: float
    statistic: float
    df: int
    phi: float
    mean_bin_baseline: float
    mean_bin_day: float
    method: str = ("Pearson chi-square of homogeneity (baseline pooled vs the day) divided by "
                   "an upper bound of the between-day dispersion of the baseline histograms")


def _homogeneity_x2(table: np.ndarray) -> tuple[float, int]:
    keep = table.sum(axis=0) > 0
    t = table[:, keep]
    if t.shape[1] < 2 or np.any(t.sum(axis=1) == 0):
        return 0.0, 0
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / t.sum()
    x2 = float(np.sum((t - expected) ** 2 / expected))
    return x2, (t.shape[0] - 1) * (t.shape[1] - 1)


def histogram_dispersion(baseline_days: Sequence[Sequence[float]]) -> float:
    """Upper bound of the between-day dispersion of baseline score histograms (>= 1)."""
    table = np.asarray(baseline_days, dtype=float)
    if table.ndim != 2 or table.shape[0] < 2:
        return 1.0
    x2, df = _homogeneity_x2(table)
    if df == 0 or x2 <= 0:
        return 1.0
    return max(1.0, x2 / float(stats.chi2.ppf(PHI_UPPER_QUANTILE, df)))


def score_shift_test(baseline: Sequence[float], day: Sequence[float], phi: float = 1.0
                     ) -> ShiftTest:
    """Whether a day's histogram of classifier scores differs from the baseline's."""
    b = np.asarray(baseline, dtype=float)
    d = np.asarray(day, dtype=float)
    if b.shape != d.shape or b.ndim != 1:
        raise StatsInputError("histograms must have the same bins")
    x2, df = _homogeneity_x2(np.vstack([b, d]))
    bins = np.arange(b.size)
    mb = float(np.dot(bins, b) / b.sum()) if b.sum() else float("nan")
    md = float(np.dot(bins, d) / d.sum()) if d.sum() else float("nan")
    if df == 0:
        return ShiftTest(1.0, 0.0, 0, phi, mb, md)
    stat = x2 / max(phi, 1.0)
    return ShiftTest(float(stats.chi2.sf(stat, df)), stat, df, max(phi, 1.0), mb, md)
