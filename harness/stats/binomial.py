"""One binomial proportion: intervals, one-sided bounds and the exact test.

All functions are pure functions of counts. Methods and their sources:

* ``wilson`` — score interval (Wilson 1927); recommended for display by Brown, Cai &
  DasGupta (2001, Stat. Sci. 16:101-133) and Newcombe (1998a, Stat. Med. 17:857-872).
* ``wilson-cc`` — Wilson with continuity correction, Newcombe (1998a) method 4.
* ``clopper-pearson`` — exact interval (Clopper & Pearson 1934, Biometrika 26:404-413)
  from beta quantiles; coverage >= nominal for every rate, hence the gate bound.
* ``mid-p`` — exact tails with half the probability of the observed count (Lancaster 1961;
  Berry & Armitage 1995); less conservative than Clopper-Pearson, not guaranteed.
* ``jeffreys`` — equal-tailed Beta(k+1/2, n-k+1/2) quantiles with the Brown-Cai-DasGupta
  boundary modification (lower = 0 at k = 0, upper = 1 at k = n).
* ``agresti-coull`` — "add z^2/2 successes and failures" (Agresti & Coull 1998, Am. Stat.
  52:119-126), clipped to [0, 1].

There is deliberately no Wald interval: it has zero width at k = 0 and minimum coverage near
14% for rare rates (statistics.md §2.1).

One-sided bounds (``sides="upper"`` / ``"lower"``) put the whole error probability
1 - confidence_level on one side; the other end is the trivial 0 or 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy import optimize, special, stats

from harness.errors import StatsInputError
from harness.stats._checks import check_confidence, check_k_n, check_rate, check_sides

METHODS = ("wilson", "wilson-cc", "clopper-pearson", "mid-p", "jeffreys", "agresti-coull")
Sides = Literal["two-sided", "upper", "lower"]


@dataclass(frozen=True)
class Interval:
    """An interval for a rate (or a difference of rates).

    ``low``/``high`` are the limits; for a one-sided bound the trivial end is 0 or 1 (-1 or 1
    for a difference). ``estimate`` is the point estimate the interval is about.
    """

    low: float
    high: float
    method: str
    confidence_level: float
    sides: str = "two-sided"
    estimate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return asdict(self)


def _tail(confidence_level: float, sides: str) -> float:
    """Error probability in each tail that is computed."""
    alpha = 1.0 - confidence_level
    return alpha / 2.0 if sides == "two-sided" else alpha


def _clip(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


def _wilson(k: float, n: float, z: float) -> tuple[float, float]:
    # Wilson score limits: centre (k + z^2/2)/(n + z^2), half-width
    # z*sqrt(k(n-k)/n + z^2/4)/(n + z^2)  (Newcombe 1998a, method 3). k and n may be
    # effective (fractional) counts, as in design-effect adjusted intervals.
    p = k / n
    denom = n + z * z
    centre = (k + z * z / 2.0) / denom
    half = z * math.sqrt(n * p * (1.0 - p) + z * z / 4.0) / denom
    low = 0.0 if k == 0 else _clip(centre - half)
    high = 1.0 if k == n else _clip(centre + half)
    return low, high


def _square_and_add(p1: float, l1: float, u1: float, p2: float, l2: float, u2: float,
                    r: float = 0.0) -> tuple[float, float]:
    """Newcombe / Zou-Donner square-and-add (MOVER) limits for p1 - p2 from each
    proportion's limits, with correlation r between the estimates (0: independent).

    For |r| <= 1 the radicands are >= (x - y)^2 >= 0; max() only guards rounding.
    """
    dl1, du1, dl2, du2 = p1 - l1, u1 - p1, p2 - l2, u2 - p2
    low = p1 - p2 - math.sqrt(max(0.0, dl1 * dl1 - 2.0 * r * dl1 * du2 + du2 * du2))
    high = p1 - p2 + math.sqrt(max(0.0, du1 * du1 - 2.0 * r * du1 * dl2 + dl2 * dl2))
    return low, high


def _wilson_cc(k: int, n: int, z: float) -> tuple[float, float]:
    # Continuity-corrected Wilson, Newcombe (1998a) method 4, equations as printed there.
    p = k / n
    z2 = z * z
    denom = 2.0 * (n + z2)
    if k == 0:
        low = 0.0
    else:
        low = (2 * n * p + z2 - 1 - z * math.sqrt(z2 - 2 - 1 / n + 4 * p * (n * (1 - p) + 1)))
        low = _clip(low / denom)
    if k == n:
        high = 1.0
    else:
        high = (2 * n * p + z2 + 1 + z * math.sqrt(z2 + 2 - 1 / n + 4 * p * (n * (1 - p) - 1)))
        high = _clip(high / denom)
    return low, high


def _clopper_pearson(k: float, n: float, a: float) -> tuple[float, float]:
    # Exact limits as beta quantiles (the binomial-beta identity): lower = Beta^-1(a; k, n-k+1),
    # upper = Beta^-1(1-a; k+1, n-k). Works for non-integer k, n too (used for effective counts).
    low = 0.0 if k <= 0 else float(special.betaincinv(k, n - k + 1, a))
    high = 1.0 if k >= n else float(special.betaincinv(k + 1, n - k, 1.0 - a))
    return low, high


def _jeffreys(k: int, n: int, a: float) -> tuple[float, float]:
    low = 0.0 if k == 0 else float(special.betaincinv(k + 0.5, n - k + 0.5, a))
    high = 1.0 if k == n else float(special.betaincinv(k + 0.5, n - k + 0.5, 1.0 - a))
    return low, high


def _agresti_coull(k: int, n: int, z: float) -> tuple[float, float]:
    n_t = n + z * z
    p_t = (k + z * z / 2.0) / n_t
    half = z * math.sqrt(p_t * (1.0 - p_t) / n_t)
    low = 0.0 if k == 0 else _clip(p_t - half)
    high = 1.0 if k == n else _clip(p_t + half)
    return low, high


def _mid_p(k: int, n: int, a: float) -> tuple[float, float]:
    # Mid-p limits solve P(X < k | p) + P(X = k | p)/2 = a (upper) and
    # P(X > k | p) + P(X = k | p)/2 = a (lower); both tails are monotone in p, so brentq on
    # (0, 1) finds the unique root.
    def upper_tail(p: float) -> float:
        return float(stats.binom.cdf(k - 1, n, p) + 0.5 * stats.binom.pmf(k, n, p)) - a

    def lower_tail(p: float) -> float:
        return float(stats.binom.sf(k, n, p) + 0.5 * stats.binom.pmf(k, n, p)) - a

    eps = 1e-15
    low = 0.0 if k == 0 else float(optimize.brentq(lower_tail, eps, 1 - eps, xtol=1e-14))
    high = 1.0 if k == n else float(optimize.brentq(upper_tail, eps, 1 - eps, xtol=1e-14))
    return low, high


def binomial_interval(
    k: int,
    n: int,
    confidence_level: float = 0.95,
    method: str = "wilson",
    sides: Sides | str = "two-sided",
) -> Interval:
    """Confidence interval (or one-sided bound) for a rate from ``k`` events in ``n`` samples.

    ``sides="upper"`` returns ``[0, U]`` where U is a one-sided upper bound at
    ``confidence_level``; ``"lower"`` returns ``[L, 1]``. At k = 0 every method's lower limit is
    0 and its upper limit is positive (e.g. Clopper-Pearson one-sided: 1 - alpha^(1/n), about
    3/n at 95%); at k = n the upper limit is 1.

    Raises ``StatsInputError`` for n = 0, k > n, negative or non-integer counts, a confidence
    level outside (0, 1), or an unknown method/sides.
    """
    k, n = check_k_n(k, n)
    c = check_confidence(confidence_level)
    check_sides(sides)
    if method not in METHODS:
        raise StatsInputError(
            f"unknown interval method {method!r}; choose one of {', '.join(METHODS)} "
            "(there is no Wald interval on purpose)")
    a = _tail(c, sides)
    z = float(stats.norm.isf(a))
    if method == "wilson":
        low, high = _wilson(k, n, z)
    elif method == "wilson-cc":
        low, high = _wilson_cc(k, n, z)
    elif method == "clopper-pearson":
        low, high = _clopper_pearson(k, n, a)
    elif method == "mid-p":
        low, high = _mid_p(k, n, a)
    elif method == "jeffreys":
        low, high = _jeffreys(k, n, a)
    else:
        low, high = _agresti_coull(k, n, z)
    if sides == "upper":
        low = 0.0
    elif sides == "lower":
        high = 1.0
    return Interval(low=low, high=high, method=method, confidence_level=c, sides=sides,
                    estimate=k / n)


def clopper_pearson_bound(k: float, n: float, confidence_level: float, side: str) -> float:
    """One-sided exact bound that also accepts non-integer (effective) counts.

    ``side`` is "upper" or "lower". Used for design-effect-adjusted counts (Korn & Graubard
    1998), where k_eff = rate * n_eff is not an integer; the beta-quantile form of the
    Clopper-Pearson limit extends continuously to real k, n.
    """
    if not (n > 0 and 0 <= k <= n):
        raise StatsInputError(f"effective counts must satisfy 0 <= k <= n, n > 0; got {k}, {n}")
    a = 1.0 - check_confidence(confidence_level)
    low, high = _clopper_pearson(k, n, a)
    return high if side == "upper" else low


def exact_binomial_pvalue(k: int, n: int, rate: float, alternative: str = "less") -> float:
    """Exact one-sided binomial p-value against ``rate``.

    ``alternative="less"``: P(X <= k | n, rate), small when the true rate is below ``rate``
    (H0: rate >= max_rate). ``"greater"``: P(X >= k | n, rate), small when it is above.
    Duality (statistics.md §2.3): p < alpha exactly when the one-sided (1 - alpha)
    Clopper-Pearson bound lies strictly beyond ``rate``.
    """
    k, n = check_k_n(k, n)
    r = check_rate("rate", rate)
    if alternative == "less":
        return float(min(1.0, stats.binom.cdf(k, n, r)))
    if alternative == "greater":
        return float(min(1.0, stats.binom.sf(k - 1, n, r)))
    raise StatsInputError(f"alternative must be 'less' or 'greater', got {alternative!r}")


def difference_interval(
    k1: int,
    n1: int,
    k2: int,
    n2: int,
    confidence_level: float = 0.95,
    method: str = "newcombe",
    sides: Sides | str = "two-sided",
) -> Interval:
    """Interval for rate1 - rate2 from two independent samples.

    ``method="newcombe"``: Newcombe's hybrid score ("square-and-add", method 10 of Newcombe
    1998b, Stat. Med. 17:873-890) built from the two Wilson intervals:
    L = d - sqrt((p1 - l1)^2 + (u2 - p2)^2), U = d + sqrt((u1 - p1)^2 + (p2 - l2)^2).
    One-sided (``sides="upper"``/``"lower"``) uses one-sided Wilson limits at
    ``confidence_level``; the trivial end is -1 or 1.
    """
    k1, n1 = check_k_n(k1, n1, "k1", "n1")
    k2, n2 = check_k_n(k2, n2, "k2", "n2")
    c = check_confidence(confidence_level)
    check_sides(sides)
    if method != "newcombe":
        raise StatsInputError(f"unknown difference method {method!r}; use 'newcombe'")
    z = float(stats.norm.isf(_tail(c, sides)))
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = _wilson(k1, n1, z)
    l2, u2 = _wilson(k2, n2, z)
    d = p1 - p2
    low, high = _square_and_add(p1, l1, u1, p2, l2, u2)
    low, high = max(-1.0, low), min(1.0, high)
    if sides == "upper":
        low = -1.0
    elif sides == "lower":
        high = 1.0
    return Interval(low=low, high=high, method=method, confidence_level=c, sides=sides,
                    estimate=d)
