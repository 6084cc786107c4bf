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

The two-point law is the worst case only at zero harmful samples. With k > 0 the lower tail
P(K <= k) is no longer a convex function of each probe's rate, and a skewed continuous law
can make a small total likelier: beta probe rates (mean 5%, icc 0.5, 30 probes x 1,000
samples) put most probes at rates of 0.1-1% that show a handful of harmful samples, which the
two-point law (every probe at 0 or at h ~ 0.5) finds implausible; coverage was 91.8%. The
nuisance supremum therefore also runs over the beta-binomial family (Skellam 1948, JRSS B
10:257; the standard over-dispersed binomial, Williams 1975, Biometrics 31:949) with the
same mean and icc: the p-value is the largest tail over both families, valid for each.

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
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy import optimize, signal, special, stats

FADE_START = 5
"""At or below this many active probes the assumed icc is the full ``max_icc``."""
FADE_END = 30
"""From this many active probes on the rare-harm bound assumes icc 0 (pooled exact)."""
_DIRECT_CONV = 250_000
"""Direct convolution below this many products: exact and, for the short truncated pmfs here,
faster than FFT (whose per-call overhead dominated the gate's run time)."""
ICC_GRID = (1.0, 0.6, 0.35, 0.2, 0.1, 0.05, 0.0)
"""Fractions of the assumed icc over which the p-value takes its supremum (the nuisance)."""
BETA_ICC_GRID = (1.0, 0.5)
"""Fractions of the assumed icc tried for the beta-binomial family (its lower tail at small k
grows with the icc, so the top of the range is where it is largest)."""


def _conv(a: np.ndarray, b: np.ndarray, length: int) -> np.ndarray:
    out = np.convolve(a, b) if a.size * b.size < _DIRECT_CONV else signal.fftconvolve(a, b)
    # FFT round-off can leave -1e-17 where a probability is 0.
    out = out[:length]
    np.maximum(out, 0.0, out=out)
    return out


Groups = tuple[tuple[int, int], ...]
"""(samples per probe, number of probes with that many) for every distinct size."""


def size_groups(n: np.ndarray) -> Groups:
    """The probes grouped by their number of samples."""
    sizes, counts = np.unique(n, return_counts=True)
    return tuple(zip(sizes.tolist(), counts.tolist(), strict=True))


def _family_cdf(k: int, groups: Groups, pmf: Callable[[np.ndarray, int], np.ndarray],
                below: float | None = None) -> float:
    """P(K <= k) for K the sum of independent per-probe counts, X_j with pmf(x, n_j) on
    x = 0..min(n_j, k), by truncated convolution (groups of equal n_j by repeated squaring).

    With ``below``, a caller that only asks whether the probability is below that level may
    get a Chernoff upper bound instead (`_chernoff_cdf_bound`), when it is below the level
    and the exact law would cost much more."""
    # Few probe sizes only: the bound's cost grows with the number of sizes as fast as the
    # exact law's does (and gates mostly see one size).
    if below is not None and len(groups) <= _CHERNOFF_MAX_SIZES \
            and _convolution_ns(k, groups) > _CHERNOFF_WORTH_NS:
        bound = _chernoff_cdf_bound(k, groups, pmf)
        if bound < below:
            return bound
    length = k + 1
    dist = np.ones(1)
    for m, c in groups:
        p = pmf(np.arange(min(int(m), k) + 1), int(m))
        dist = _conv(dist, _power(p, int(c), length), length)
    return float(min(1.0, dist.sum()))


_CHERNOFF_MAX_SIZES = 4
_CHERNOFF_WORTH_NS = 2_000_000.0
"""Try a Chernoff bound first where the exact law would cost more than this (~2 ms); the bound
itself costs about a tenth of a millisecond per thousand samples per probe size."""


def _convolution_ns(k: int, groups: Groups) -> float:
    """Rough cost in nanoseconds (measured with numpy) of `_family_cdf`'s truncated
    convolutions: about 2 log2(count) convolutions of length k + 1 per probe size, direct
    below `_DIRECT_CONV` products, else by FFT."""
    total = 0.0
    for m, c in groups:
        width = min(k, m) + 1
        products = (k + 1) * width
        one = 2_000.0 + 0.6 * products if products < _DIRECT_CONV \
            else 30_000.0 + 25.0 * (k + 1 + width)
        total += 2 * int(c).bit_length() * one
    return total


def _chernoff_cdf_bound(k: int, groups: Groups,
                        pmf: Callable[[np.ndarray, int], np.ndarray]) -> float:
    """Chernoff bound P(K <= k) <= inf_{t >= 0} e^{t k} E[e^{-t K}] = inf_t exp(t k +
    sum_m c_m log M_m(t)), M_m(t) = sum_x P(X = x) e^{-t x} over one probe's whole law.

    Every t gives a valid bound (Markov's inequality on e^{-t K}), so an inexact minimisation
    only weakens it; the exponent is convex in t, so a bounded scalar search finds it."""
    laws = []
    for m, c in groups:
        x = np.arange(int(m) + 1)
        with np.errstate(divide="ignore"):
            laws.append((float(c), np.log(pmf(x, int(m))), x))

    def exponent(t: float) -> float:
        return t * k + sum(c * float(special.logsumexp(log_p - t * x)) for c, log_p, x in laws)

    best = optimize.minimize_scalar(exponent, bounds=(0.0, 50.0), method="bounded",
                                    options={"xatol": 1e-3})
    return math.exp(min(0.0, float(best.fun)))


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


def _log_choose(m: int, x: np.ndarray) -> np.ndarray:
    out: np.ndarray = special.gammaln(m + 1) - special.gammaln(x + 1) - special.gammaln(m - x + 1)
    return out


def two_point_cdf(k: int, n: np.ndarray, mu: float, icc: float,
                  groups: Groups | None = None, below: float | None = None) -> float:
    """P(K <= k) for K = sum_j X_j, X_j ~ (1 - f) * 0 + f * Binomial(n_j, h), the two-point
    mixture with mean ``mu`` and intraclass correlation ``icc`` (module docstring); with
    ``below``, possibly an upper bound below that level (`_family_cdf`)."""
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

    if h >= 1.0:  # every harmful probe is harmful in every sample
        def pmf(x: np.ndarray, m: int) -> np.ndarray:
            p = np.zeros(x.size)
            p[0] = 1.0 - f
            if x[-1] == m:
                p[-1] += f
            return p
    else:
        log_h, log_1h = math.log(h), math.log1p(-h)

        def pmf(x: np.ndarray, m: int) -> np.ndarray:
            # Binomial(m, h) pmf by log-gamma (scipy.stats.binom.pmf's checks cost more
            # than the convolution here; tests/stats/test_rare.py checks against it).
            p = f * np.exp(_log_choose(m, x) + x * log_h + (m - x) * log_1h)
            p[0] += 1.0 - f
            return p

    return _family_cdf(k, size_groups(n) if groups is None else groups, pmf, below)


def beta_binomial_cdf(k: int, n: np.ndarray, mu: float, icc: float,
                      groups: Groups | None = None, below: float | None = None) -> float:
    """P(K <= k) for K = sum_j X_j, X_j ~ BetaBinomial(n_j, a, b) with mean a/(a+b) = ``mu``
    and intraclass correlation 1/(a+b+1) = ``icc`` (probe rates Beta(a, b)); with ``below``,
    possibly an upper bound below that level (`_family_cdf`)."""
    if k < 0:
        return 0.0
    if k >= int(n.sum()) or mu <= 0.0:
        return 1.0
    if icc <= 0.0:
        return float(stats.binom.cdf(k, int(n.sum()), mu))
    if icc >= 1.0:  # Beta(0, 0): every probe at rate 0 or 1, the two-point law at icc 1
        return two_point_cdf(k, n, mu, 1.0, groups, below)
    s = 1.0 / icc - 1.0
    a, b = mu * s, (1.0 - mu) * s

    def pmf(x: np.ndarray, m: int) -> np.ndarray:
        # log C(m, x) + log B(x + a, m - x + b) - log B(a, b), vectorised (faster than
        # scipy.stats.betabinom.pmf, which it equals; tests/stats/test_rare.py).
        log_p = _log_choose(m, x) + special.betaln(x + a, m - x + b) - special.betaln(a, b)
        return np.asarray(np.exp(log_p))

    return _family_cdf(k, size_groups(n) if groups is None else groups, pmf, below)


FADE_STEPS = ((5, 1.0), (10, 0.75), (15, 0.5), (22, 0.3), (29, 0.15))
"""(last active count, fraction of max_icc) of each step of the fade; 0 from FADE_END on.
Steps rather than a slope: the envelope then needs one candidate per step (speed)."""


def faded_icc(n_active: int, max_icc: float) -> float:
    """Assumed icc for the rare-harm bound when ``n_active`` probes showed harm."""
    for last, frac in FADE_STEPS:
        if n_active <= last:
            return max_icc * frac
    return 0.0


Term = tuple[int, str, float]
"""(kept harmful total, law, icc) of one tail probability in `rare_pvalue`'s maximum; the law
is ``"two-point"`` or ``"beta"``."""


def _terms(k: np.ndarray, max_icc: float) -> list[Term]:
    """Every tail probability whose maximum is `rare_pvalue`: for each candidate sub-pattern
    of the monotone envelope (module docstring), `two_point_cdf` on the grid `ICC_GRID` x its
    icc and `beta_binomial_cdf` on `BETA_ICC_GRID` x its icc.

    The icc is a nuisance parameter known only to be at most the faded icc; the p-value must
    hold for every value (Berger & Boos 1994, JASA 89:1012). At k = 0 the supremum is at the
    icc itself; for k > 0 a smaller icc (probes at a lower rate h) can make few harmful
    samples likelier: beta probe rates at ICC 0.5 with 30 probes x 1,000 samples covered 90%
    when only icc = 0.5 was tried.
    """
    active = np.sort(k[k > 0])
    n_active = int(active.size)
    total = int(active.sum())
    drop = np.concatenate(([0], np.cumsum(active)))  # drop[i] = sum of the i smallest
    candidates = {min(n_active, last) for last, _ in FADE_STEPS} | {n_active}
    out: list[Term] = []
    for a in sorted(candidates, reverse=True):
        icc = faded_icc(a, max_icc)
        k_kept = total - int(drop[n_active - a])
        if k_kept <= 0 or icc <= 0.0:
            out.append((k_kept, "two-point", icc))
            continue
        out += [(k_kept, "two-point", icc * f) for f in ICC_GRID]
        out += [(k_kept, "beta", icc * f) for f in BETA_ICC_GRID]
    return out


def _term_cdf(term: Term, n: np.ndarray, mu: float, groups: Groups,
              below: float | None = None) -> float:
    k_kept, law, icc = term
    cdf = beta_binomial_cdf if law == "beta" else two_point_cdf
    return cdf(k_kept, n, mu, icc, groups, below)


def rare_pvalue(k: np.ndarray, n: np.ndarray, max_rate: float, max_icc: float) -> float:
    """Monotone-envelope p-value of H0: mean >= max_rate from the two-point model.

    For every a' <= A (A = active probes) keep the a' probes with the most harm, so the total
    is K'(a') = K - (the A - a' smallest active counts), and take the largest
    sup_{icc <= faded_icc(a')} P(K <= K'(a') | max_rate, icc) (`_terms`). Within a step
    of the fade the icc is constant and K' grows with a', so only the last a' <= A of each
    step, and a' = A, can be largest.
    """
    groups = size_groups(n)
    best = 0.0
    for term in _terms(k, max_icc):
        best = max(best, _term_cdf(term, n, max_rate, groups))
        if best >= 1.0:
            break
    return best


def rare_pvalue_below(k: np.ndarray, n: np.ndarray, max_rate: float, max_icc: float,
                      level: float) -> bool:
    """Whether `rare_pvalue` < ``level``, without computing it: every term must be below the
    level, so the first that is not decides, and a term far below it is settled by its
    Chernoff bound (`_family_cdf`). The same answer as ``rare_pvalue(...) < level``."""
    groups = size_groups(n)
    return all(_term_cdf(term, n, max_rate, groups, below=level) < level
               for term in _terms(k, max_icc))


def rare_upper(k: np.ndarray, n: np.ndarray, alpha: float, max_icc: float) -> float:
    """Upper bound dual to `rare_pvalue`: the mean at which the p-value equals ``alpha``.

    The p-value is a maximum of tail probabilities (`_terms`), each continuous and falling as
    the tested mean grows (both laws are stochastically increasing in mu at a fixed icc), so
    the bound is the largest of the terms' roots. It is at least the pooled Clopper-Pearson
    bound (icc 0 is in the nuisance range). Starting there, each term is evaluated once at
    the largest root so far and only a term above alpha there gets a root of its own
    (Brent's method, scipy.optimize.brentq): about one evaluation per term instead of one
    per term and Brent step (11x faster than solving for the maximum, the same bound).

    The bound depends on the counts only through the sorted harmful counts and the sorted
    sample counts (the envelope sorts the one, the laws group the other), so it is cached on
    those: the gate asks for the same bound several times (verdict, worst case, interval).
    """
    return _rare_upper_cached(tuple(sorted(np.asarray(k, dtype=np.int64).tolist())),
                              tuple(sorted(np.asarray(n, dtype=np.int64).tolist())),
                              float(alpha), float(max_icc))


@lru_cache(maxsize=4096)
def _rare_upper_cached(k_sorted: tuple[int, ...], n_sorted: tuple[int, ...], alpha: float,
                       max_icc: float) -> float:
    k = np.array(k_sorted, dtype=np.int64)
    n = np.array(n_sorted, dtype=np.int64)
    groups = size_groups(n)
    hi = 1.0 - 1e-12
    total, big_n = int(k.sum()), int(n.sum())
    lo = float(special.betaincinv(total + 1, big_n - total, 1.0 - alpha)) * (1.0 - 1e-9) \
        if total < big_n else hi
    lo = max(lo, 1e-12)
    # The p-value is a maximum of tail probabilities, each continuous and falling in mu, so
    # {mu: p-value > alpha} is the union of the terms' sets [0, root_t): the bound is the
    # largest of the terms' roots. A term at or below alpha at the largest root so far has its
    # root below it and costs one evaluation; only a term above it needs a root of its own.
    best = lo
    for term in _terms(k, max_icc):
        # (No Chernoff screen here: at the largest root so far the terms that matter sit
        # near alpha, where the bound is too loose to settle them and only costs time.)
        if _term_cdf(term, n, best, groups) <= alpha:
            continue
        if _term_cdf(term, n, hi, groups) > alpha:
            return 1.0
        best = float(optimize.brentq(lambda mu, t=term: _term_cdf(t, n, mu, groups) - alpha,
                                     best, hi, xtol=1e-15, rtol=1e-12))
    if best <= lo:
        return lo
    # Round up onto a grid of 1e-9 relative steps: two patterns whose p-value curves are the
    # same (e.g. at the zero-harm floor) then get the same bound, not one 1e-13 lower.
    step = 10.0 ** (math.floor(math.log10(best)) - 9)
    return float(min(hi, math.ceil(best * (1.0 + 1e-11) / step) * step))
