"""Exact bounds for rare, bursty harm over probes: the two-point ("bursty") mixture.

Model. Probe j's true harmful rate p_j is drawn from a distribution G with mean mu and
intraclass correlation icc = Var(p_j) / (mu (1 - mu)); its k_j of n_j samples are
Binomial(n_j, p_j). The probability that a probe shows no harm, E_G[(1 - p)^n], is a convex
function of p, so over all G with that mean and a variance at most icc * mu (1 - mu) it is
largest for the two-point distribution with one atom at 0: p = h = mu + icc (1 - mu) with
probability f = mu / h, else 0 (the extremal distributions of a moment problem sit on two
points, one at an end of [0, 1]: Karlin & Studden 1966, ch. XII; the same argument gives the
worst case of the beta-binomial family used before, whose clean-probe probability is smaller).
"A few probes carry all the harm" is this model, the jailbreak pattern.

Test. H0: mean >= mu is tested with the total harmful count K = sum k_j: the exact p-value is
P(K <= k_obs | mu, icc) under the two-point model, the distribution of K computed by
convolving the per-probe laws truncated at k_obs (groups of equal n_j by repeated squaring).
At icc = 0 the model is binomial and the bound is the pooled Clopper-Pearson one.

Fade. The two-point assumption at the maximum icc is the price of validity when few probes
show harm; once many probes show harm the CLT over probes (`harness.stats.clustered`) takes
over. The assumed icc falls in steps (`FADE_STEPS`) from ``max_icc`` at ``FADE_START``
active probes to 0 at ``FADE_END``; within each step the p-value is the supremum over
icc' <= the step's icc (the icc is a nuisance parameter). Because a lower assumed icc gives
a smaller bound, a new active probe could lower the bound; the monotone envelope removes
that: the p-value is the largest over every sub-pattern reached by removing whole active
probes (smallest first), so one more harmful sample never lowers the bound (Buehler 1957's
principle: order the outcomes, then the bound is monotone in that order).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal, stats

FADE_START = 5
"""At or below this many active probes the assumed icc is the full ``max_icc``."""
FADE_END = 30
"""From this many active probes on the rare-harm bound assumes icc 0 (pooled exact)."""
_DIRECT_CONV = 4096
ICC_GRID = (1.0, 0.6, 0.35, 0.2, 0.1, 0.05, 0.0)
"""Fractions of the assumed icc over which the p-value takes its supremum (the nuisance)."""


def _conv(a: np.ndarray, b: np.ndarray, length: int) -> np.ndarray:
    out = np.convolve(a, b) if a.size * b.size < _DIRECT_CONV else signal.fftconvolve(a, b)
    # FFT round-off can leave -1e-17 where a probability is 0.
    return np.clip(out[:length], 0.0, None)


def _power(p: np.ndarray, times: int, length: int) -> np.ndarray:
    """pmf of the sum of ``times`` independent copies, truncated to ``length`` terms."""
    result = np.ones(1)
    base = p[:length]
    while times:
        if times & 1:
            result = _conv(result, base, length)
        times >>= 1
        if times:
            base = _conv(base, base, length)
    return result


def two_point_cdf(k: int, n: np.ndarray, mu: float, icc: float) -> float:
    """P(K <= k) for K = sum_j X_j, X_j ~ (1 - f) * 0 + f * Binomial(n_j, h), the two-point
    mixture with mean ``mu`` and intraclass correlation ``icc`` (module docstring)."""
    if k < 0:
        return 0.0
    total = int(n.sum())
    if k >= total:
        return 1.0
    if mu <= 0.0:
        return 1.0
    if icc <= 0.0:
        return float(stats.binom.cdf(k, total, mu))
    h = mu + icc * (1.0 - mu)
    f = mu / h
    sizes, counts = np.unique(n, return_counts=True)
    length = k + 1
    dist = np.ones(1)
    for m, c in zip(sizes.tolist(), counts.tolist(), strict=True):
        x = np.arange(min(int(m), k) + 1)
        p = f * stats.binom.pmf(x, int(m), h)
        p[0] += 1.0 - f
        dist = _conv(dist, _power(p, int(c), length), length)
    return float(min(1.0, dist.sum()))


FADE_STEPS = ((5, 1.0), (10, 0.75), (15, 0.5), (22, 0.3), (29, 0.15))
"""(last active count, fraction of max_icc) of each step of the fade; 0 from FADE_END on.
Steps rather than a slope: the envelope then needs one candidate per step (speed)."""


def faded_icc(n_active: int, max_icc: float) -> float:
    """Assumed icc for the rare-harm bound when ``n_active`` probes showed harm."""
    for last, frac in FADE_STEPS:
        if n_active <= last:
            return max_icc * frac
    return 0.0


def rare_pvalue(k: np.ndarray, n: np.ndarray, max_rate: float, max_icc: float) -> float:
    """Monotone-envelope p-value of H0: mean >= max_rate from the two-point model.

    For every a' <= A (A = active probes) keep the a' probes with the most harm, so the total
    is K'(a') = K - (the A - a' smallest active counts), and take the largest
    sup_{icc <= faded_icc(a')} P(K <= K'(a') | max_rate, icc). Within a step of the fade the
    icc is constant and K' grows with a', so only the last a' <= A of each step, and a' = A,
    can be largest.
    """
    active = np.sort(k[k > 0])
    n_active = int(active.size)
    total = int(active.sum())
    drop = np.concatenate(([0], np.cumsum(active)))  # drop[i] = sum of the i smallest
    candidates = {min(n_active, last) for last, _ in FADE_STEPS} | {n_active}
    best = 0.0
    for a in sorted(candidates, reverse=True):
        icc = faded_icc(a, max_icc)
        k_kept = total - int(drop[n_active - a])
        best = max(best, worst_icc_cdf(k_kept, n, max_rate, icc))
        if best >= 1.0:
            break
    return best


def worst_icc_cdf(k: int, n: np.ndarray, mu: float, icc: float) -> float:
    """sup over icc' in [0, icc] of `two_point_cdf` (on the grid `ICC_GRID` * icc).

    The icc is a nuisance parameter known only to be at most ``icc``; the p-value must hold
    for every value (Berger & Boos 1994, JASA 89:1012). At k = 0 the supremum is at ``icc``
    itself; for k > 0 a smaller icc (probes at a lower rate h) can make few harmful samples
    likelier: beta probe rates at ICC 0.5 with 30 probes x 1,000 samples covered 90% when
    only icc = 0.5 was tried.
    """
    if k <= 0 or icc <= 0.0:
        return two_point_cdf(k, n, mu, icc)
    return max(two_point_cdf(k, n, mu, icc * f) for f in ICC_GRID)


def rare_upper(k: np.ndarray, n: np.ndarray, alpha: float, max_icc: float) -> float:
    """Upper bound dual to `rare_pvalue`: the mean at which the p-value equals ``alpha``.

    The p-value falls as the tested mean grows (the two-point law is stochastically increasing
    in mu at a fixed icc), so bisection on log(mu) finds it.
    """
    if rare_pvalue(k, n, 1.0 - 1e-12, max_icc) > alpha:
        return 1.0
    hi = 1.0 - 1e-12
    # Geometric bisection: bounds span 1e-7 .. 1, relative precision matters near 0.
    lo = 1e-12
    if rare_pvalue(k, n, lo, max_icc) <= alpha:
        return lo
    for _ in range(60):
        mid = math.sqrt(lo * hi) if hi / lo > 4 else 0.5 * (lo + hi)
        if rare_pvalue(k, n, mid, max_icc) > alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-7 * hi:
            break
    return hi
