"""Watch-period decisions that stay valid when the harmful rate changes between nights.

A confidence sequence for one stationary rate (`harness.stats.sequential`) answers "what is
*the* rate?" and, reported as a running intersection over nights, keeps the tight bound of
the early nights after the rate has risen: a step from 0.6x to 1.2x the max rate at night 20 of
60 ended ``verified`` in most watches. A watch has to answer two other questions:

* **Has the rate recently gone above the max?** (`recent_rate_breach`) A sliding window of
  the last ``window`` nights is tested at every nightly look: the one-sided exact
  (Clopper-Pearson) lower bound of the window's pooled rate is compared with the max rate, at
  a per-look level spent from a fixed budget by `harness.stats.drift.look_alpha` (half evenly
  over the planned looks, half over any extension). This is a windowed detector in the sense
  of the change-detection literature (e.g. the sliding-window scan statistics of Glaz, Naus &
  Wallenstein 2001, *Scan Statistics*, ch. 13); the union bound over looks makes the chance of
  *any* false alarm over the whole watch at most the budget, under any pattern of nightly
  rates that never exceeds the max (not only a stationary one), because each look's test is
  valid for its own window.
* **Was the rate below the max over the period and at its end?** (`verify_rate`) At the
  looks where a watch can be declared verified (the period is over), the claim is the
  conjunction "the pooled rate over the whole segment is below the max rate *and* the pooled
  rate over the last ``window`` nights is below it". Each part is tested with the one-sided
  exact upper bound at the look's level; the conjunction is false only if one part is, and
  that part's test passes with probability at most the level, so no split between the two is
  needed. Levels over the verification looks are ``alpha / 2`` at the first look after the
  period ends and ``(alpha / 2) / ((i - 1) i)`` at the i-th (summing to alpha): a watch kept
  running past its period stays valid.

Why exact binomial bounds are valid when rates vary: given the prompts and nightly rates,
the harmful count of a window is a sum of independent Bernoulli variables with different
means (Poisson-binomial). Hoeffding (1956), "On the distribution of the number of successes
in independent trials", Ann. Math. Statist. 27:713-721, Theorem 4 (with b = 0 or c = n): its
tails at least one count beyond the mean are no heavier than those of the binomial with the
same mean: P(S <= b) <= P(Bin(n, p_bar) <= b) for b <= n p_bar - 1, and P(S >= c) <=
P(Bin(n, p_bar) >= c) for c >= n p_bar + 1. Both tests below require their count to be that
far from n * max_rate (``verify``: k <= n max_rate - 1; ``breach``: k >= n max_rate + 1), so
the exact bound's level holds for the window's *average* rate whatever the nightly rates (and
the prompts' rates within a night) did inside it; the claim the watch makes is about that
average. (Nearer the mean the binomial bound can fail: P(S >= 1) is larger for unequal
rates.)

Everything here is pure: counts in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import special

from harness.errors import StatsInputError
from harness.stats._checks import check_count, check_rate
from harness.stats.drift import look_alpha

VERIFY_WINDOW_SHARE = 3
"""The verification window is the last third of the planned period (at least one night)."""
DETECT_WINDOW_SHARE = 6
"""The breach detector's window is the last sixth of the planned period (at least one night):
ten nights of a sixty-night watch, long enough to see a 20% rise over the max at 1,000
samples a night, short enough that an early clean stretch cannot hide it."""


def window_nights(days: int, share: int) -> int:
    """Nights in a window that covers ``1/share`` of a ``days``-night period (at least 1)."""
    if days < 1 or share < 1:
        raise StatsInputError(f"days and share must be >= 1, got {days!r} and {share!r}")
    return max(1, math.ceil(days / share))


def exact_upper(n_harmful: int, n: int, alpha: float) -> float:
    """One-sided exact (Clopper-Pearson) upper bound at level 1 - alpha; 1 when n = 0."""
    if n <= 0 or n_harmful >= n:
        return 1.0
    return float(special.betaincinv(n_harmful + 1, n - n_harmful, 1.0 - alpha))


def exact_lower(n_harmful: int, n: int, alpha: float) -> float:
    """One-sided exact (Clopper-Pearson) lower bound at level 1 - alpha; 0 when nothing seen."""
    if n <= 0 or n_harmful <= 0:
        return 0.0
    return float(special.betaincinv(n_harmful, n - n_harmful + 1, alpha))


def verification_alpha(alpha: float, look: int) -> float:
    """The level of the ``look``-th verification look (1 = the first look after the period).

    ``alpha / 2`` at the first, then ``(alpha / 2) / ((look - 1) look)``: the levels over all
    possible looks sum to alpha (union bound), so extending a watch keeps its guarantee.
    """
    if look < 1:
        raise StatsInputError(f"verification looks start at 1, got {look}")
    if not 0.0 < alpha < 1.0:
        raise StatsInputError(f"alpha must be in (0, 1), got {alpha!r}")
    if look == 1:
        return alpha / 2.0
    return (alpha / 2.0) / ((look - 1) * look)


def _checked(harmful_per_look: Sequence[int], samples_per_look: Sequence[int]
             ) -> tuple[np.ndarray, np.ndarray]:
    if len(harmful_per_look) != len(samples_per_look):
        raise StatsInputError(
            f"harmful_per_look has {len(harmful_per_look)} looks but samples_per_look has "
            f"{len(samples_per_look)}; pass one count pair per look")
    k = np.array([check_count(f"harmful_per_look[{i}]", x)
                  for i, x in enumerate(harmful_per_look)], dtype=np.int64)
    n = np.array([check_count(f"samples_per_look[{i}]", x)
                  for i, x in enumerate(samples_per_look)], dtype=np.int64)
    bad = np.flatnonzero(k > n)
    if bad.size:
        i = int(bad[0])
        raise StatsInputError(f"look {i}: {int(k[i])} harmful is more than its {int(n[i])} "
                              "samples")
    return k, n


@dataclass(frozen=True)
class RateVerification:
    """The verification test at one look: both upper bounds and whether both are below."""

    verified: bool
    max_rate: float
    alpha: float
    """The level spent at this look (each bound is one-sided at 1 - alpha)."""
    n: int
    n_harmful: int
    period_high: float
    """Exact upper bound of the pooled rate over every night of the segment."""
    window_nights: int
    window_n: int
    window_n_harmful: int
    window_high: float
    """Exact upper bound of the pooled rate over the last ``window_nights`` nights."""
    method: str = "clopper-pearson one-sided, whole segment and final window"

    @property
    def high(self) -> float:
        """The bound that decides: the larger of the two upper bounds."""
        return max(self.period_high, self.window_high)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        d = asdict(self)
        d["high"] = self.high
        return d


def verify_rate(
    harmful_per_look: Sequence[int],
    samples_per_look: Sequence[int],
    max_rate: float,
    *,
    alpha: float,
    window: int,
) -> RateVerification:
    """Is the rate below ``max_rate`` over the whole segment and over its last ``window`` looks?

    ``alpha`` is the level of this look (see `verification_alpha`). Both one-sided exact upper
    bounds must be below the max rate (module docstring: the conjunction needs no split).
    """
    k, n = _checked(harmful_per_look, samples_per_look)
    theta = check_rate("max_rate", max_rate, open_interval=True)
    if window < 1:
        raise StatsInputError(f"window must be at least one look, got {window!r}")
    k_all, n_all = int(k.sum()), int(n.sum())
    k_win, n_win = int(k[-window:].sum()), int(n[-window:].sum())
    period_high = exact_upper(k_all, n_all, alpha)
    window_high = exact_upper(k_win, n_win, alpha)
    # Hoeffding's condition (module docstring): each count at least one below n * max_rate.
    far_enough = k_all <= n_all * theta - 1 and k_win <= n_win * theta - 1
    return RateVerification(
        verified=far_enough and period_high < theta and window_high < theta,
        max_rate=theta, alpha=alpha,
        n=n_all, n_harmful=k_all, period_high=period_high,
        window_nights=min(window, int(k.size)), window_n=n_win, window_n_harmful=k_win,
        window_high=window_high)


@dataclass(frozen=True)
class WindowBreach:
    """The first look at which the recent window's lower bound passed the max rate."""

    look: int
    """0-based index of the look (night) that alarmed."""
    first_look_in_window: int
    n: int
    n_harmful: int
    low: float
    max_rate: float
    alpha: float
    """The level spent at that look."""
    method: str = "clopper-pearson one-sided lower bound, sliding window, spent over looks"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return asdict(self)


def recent_rate_breach(
    harmful_per_look: Sequence[int],
    samples_per_look: Sequence[int],
    max_rate: float,
    *,
    alpha: float,
    window: int,
    planned_looks: int,
) -> WindowBreach | None:
    """The first look whose last-``window``-looks pooled rate is shown above ``max_rate``.

    At look t (0-based) the window is looks max(0, t - window + 1)..t; the one-sided exact
    lower bound at level ``look_alpha(alpha, t + 1, planned_looks)`` must exceed the max rate.
    Under any nightly rates that never exceed the max rate, the chance of a returned breach is
    at most ``alpha`` (union bound over looks; module docstring). None when no look alarms.
    """
    k, n = _checked(harmful_per_look, samples_per_look)
    theta = check_rate("max_rate", max_rate, open_interval=True)
    if window < 1:
        raise StatsInputError(f"window must be at least one look, got {window!r}")
    ck = np.concatenate([[0], np.cumsum(k)])
    cn = np.concatenate([[0], np.cumsum(n)])
    for t in range(k.size):
        lo = max(0, t - window + 1)
        kw, nw = int(ck[t + 1] - ck[lo]), int(cn[t + 1] - cn[lo])
        if nw == 0 or kw < theta * nw + 1:  # Hoeffding's condition (module docstring)
            continue
        level = look_alpha(alpha, t + 1, planned_looks)
        low = exact_lower(kw, nw, level)
        if low > theta:
            return WindowBreach(t, lo, nw, kw, low, theta, level)
    return None
