"""A test-by-betting upper bound for the mean of independent values in [-1, 1]
(Waudby-Smith & Ramdas 2024, "Estimating means of bounded random variables by betting",
J. R. Stat. Soc. B 86(1):1-27): the population bound of a paired "no worse"
(`harness.stats.paired`, docs/statistics.md §5.3). Valid for every distribution of the
per-family differences, bursty ones included; pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from harness.errors import StatsInputError

BETTING_MAX_BET = 0.9
"""Bets are truncated at 0.9 (WSR 2024 truncate at 1/2 or 3/4 for confidence sequences; a
single final look can bet harder): a family that breaks completely costs at most 90% of the
capital."""
BETTING_ORDERS = 8
"""The capital is averaged over this many fixed pseudo-random orders of the families (an
average of e-values is an e-value), so the bound does not depend on one arbitrary order."""


def _betting_log_capital(d: np.ndarray, m: np.ndarray, tail: float, cap: float) -> np.ndarray:
    """log of the capital K_J(m) for H0: E[d] = m, betting that d < m; one order of d.

    Predictable plug-in bets (WSR 2024, eq. (26), "PrPl-EB" at a fixed sample size J):
    lambda_i = min(sqrt(2 ln(1/tail) / (J sigma2_{i-1})), cap) with sigma2_{i-1} a running
    variance that starts from a prior value of 1/4. lambda_i never depends on m, so each
    factor 1 + lambda_i (m - d_i) grows with m and the capital is monotone in m.
    """
    j = d.size
    prior = 0.25
    csum = np.concatenate([[0.0], np.cumsum(d)])
    mu = csum[1:] / (np.arange(1, j + 1) + 1.0)  # running mean after i values, prior 0
    dev = np.concatenate([[0.0], np.cumsum((d - mu) ** 2)])[:-1]
    sigma2 = (prior + dev) / (np.arange(j) + 1.0)  # uses values before i only
    lam = np.minimum(np.sqrt(2.0 * math.log(1.0 / tail) / (j * sigma2)), cap)
    # Each factor is >= 1 - lambda (1 - m) > 0 for d <= 1: lambda <= cap < 1 when m >= 0, and
    # the caller halves the cap for m < 0, where 1 / (1 - m) >= 1/2.
    return np.asarray(np.sum(np.log1p(lam[None, :] * (m[:, None] - d[None, :])), axis=1))


def betting_mean_upper(values: Sequence[float] | np.ndarray, tail: float) -> float:
    """Upper confidence bound (level 1 - ``tail``) for the mean of independent values in [-1, 1].

    Test-by-betting: for each candidate mean m the capital
    K(m) = prod_i (1 + lambda_i (m - d_i)) is a nonnegative martingale with expectation 1
    when the mean is m (and a supermartingale when it is larger), so by Markov's inequality
    P(K(m) >= 1/tail) <= tail; the bound is the smallest m with K(m) >= 1/tail
    (Waudby-Smith & Ramdas 2024). The capital is averaged over `BETTING_ORDERS` fixed
    orders. Needs no variance model: valid for bursty, skewed or two-point distributions.
    """
    d = np.asarray(values, dtype=float)
    if d.size == 0:
        return 1.0
    if np.any(d < -1.0) or np.any(d > 1.0) or not np.all(np.isfinite(d)):
        raise StatsInputError("betting_mean_upper needs values in [-1, 1]")
    if not 0.0 < tail < 1.0:
        raise StatsInputError(f"tail must be in (0, 1), got {tail!r}")
    rng = np.random.default_rng(20261201)  # fixed orders: the bound is a function of the data
    orders = [np.arange(d.size)] + [rng.permutation(d.size) for _ in range(BETTING_ORDERS - 1)]
    threshold = math.log(1.0 / tail)

    def log_capital(m: np.ndarray) -> np.ndarray:
        """log of the order-averaged capital at each candidate mean in ``m``."""
        out = np.empty(m.size)
        for sign_mask, cap in ((m >= 0.0, BETTING_MAX_BET), (m < 0.0, BETTING_MAX_BET / 2.0)):
            if not np.any(sign_mask):
                continue
            logs = np.stack([_betting_log_capital(d[o], m[sign_mask], tail, cap)
                             for o in orders])
            out[sign_mask] = np.logaddexp.reduce(logs, axis=0) - math.log(len(orders))
        return out

    # K(m) is nondecreasing in m on each side of 0 (bets never depend on m), so the bound is
    # the first rejected m: bracket it on a grid, then refine the bracket twice more.
    lo_m, hi_m = float(d.mean()), 1.0
    if log_capital(np.array([hi_m]))[0] < threshold:
        return 1.0
    for _ in range(4):
        grid = np.linspace(lo_m, hi_m, 65)
        rej = log_capital(grid) >= threshold
        first = int(np.argmax(rej))  # rej[-1] is True
        if first == 0:
            return float(grid[0])
        lo_m, hi_m = float(grid[first - 1]), float(grid[first])
        if hi_m - lo_m < 1e-8:
            break
    return float(hi_m)
