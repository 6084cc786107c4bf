"""Binary pairs (one sample per probe in each run): the exact McNemar test and Newcombe's
paired method 10 interval (Newcombe 1998c, Stat. Med. 17:2635-2650; docs/statistics.md §5.1);
pure.

Newcombe RG (1998c) "Improved confidence intervals for the difference between binomial
proportions based on paired data", Stat. Med. 17:2635-2650, method 10. With (l1, u1) and
(l2, u2) the Wilson score limits for p1 and p2 and D = p1 - p2:
  L = D - sqrt((p1 - l1)^2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)^2)
  U = D + sqrt((u1 - p1)^2 - 2 phi (u1 - p1)(p2 - l2) + (p2 - l2)^2)
phi estimates the correlation of the two classifications from the margins
e = n11 + n10, f = n01 + n00, g = n11 + n01, h = n10 + n00:
  phi = C / sqrt(e f g h), C = n11 n00 - n10 n01 if that is <= 0, otherwise
  C = max(n11 n00 - n10 n01 - n/2, 0) (Newcombe's continuity adjustment of a positive
  correlation), and phi = 0 when a margin is 0 (phi undefined).
The adjustment matters: with the plain phi a perfectly concordant table (27, 0, 0, 27)
gets phi = 1 and the zero-width interval [0, 0]; Newcombe's Table III gives
-0.0351 to 0.0351 there, which this formula reproduces (tests/stats/test_paired.py).
"""

from __future__ import annotations

import math

from scipy import stats

from harness.errors import StatsInputError
from harness.stats._checks import check_confidence, check_count, check_sides
from harness.stats.binomial import Interval, Sides, _square_and_add, _tail, _wilson


def mcnemar_exact(b: int, c: int) -> tuple[float, float]:
    """Exact McNemar p-values (two-sided, one-sided for b > c) from discordant counts."""
    m = b + c
    if m == 0:
        return 1.0, 1.0
    two = min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), m, 0.5)))
    one = float(stats.binom.sf(b - 1, m, 0.5))
    return two, one


def newcombe_paired_interval(
    n11: int,
    n10: int,
    n01: int,
    n00: int,
    confidence_level: float = 0.95,
    *,
    sides: Sides | str = "two-sided",
) -> Interval:
    """Newcombe's method 10 interval for p1 - p2 from a paired 2x2 table.

    Each of the n = n11 + n10 + n01 + n00 units is classified twice: ``n11`` positive both
    times, ``n10`` positive only the first time, ``n01`` only the second time, ``n00`` neither
    (Newcombe's a, b, c, d). p1 = (n11 + n10)/n, p2 = (n11 + n01)/n, and the estimate is
    p1 - p2 = (n10 - n01)/n. In `paired_difference` the first classification is the
    candidate and the second the baseline, so the difference is candidate - baseline.

    Returns an `Interval` (``estimate`` = the difference, method "newcombe-paired-m10"),
    clipped to [-1, 1]. One-sided (``sides="upper"``/``"lower"``) uses one-sided Wilson limits
    at ``confidence_level``; the trivial end is -1 or 1. Raises ``StatsInputError`` for
    negative or fractional counts, an empty table or a bad confidence level.
    """
    # The formula and its continuity adjustment of phi: the module docstring.
    a = check_count("n11", n11)
    b = check_count("n10", n10)
    c = check_count("n01", n01)
    d = check_count("n00", n00)
    n = a + b + c + d
    if n == 0:
        raise StatsInputError(
            "the paired table is empty (n11 + n10 + n01 + n00 = 0): there are no pairs to "
            "compare; check that both runs scored the same cells")
    cl = check_confidence(confidence_level)
    check_sides(sides)
    z = float(stats.norm.isf(_tail(cl, sides)))
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson(a + b, n, z)
    l2, u2 = _wilson(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    if margins == 0:
        phi = 0.0
    else:
        cross = a * d - b * c
        num = float(cross) if cross <= 0 else max(cross - n / 2.0, 0.0)
        phi = num / math.sqrt(float(margins))
    diff = p1 - p2
    low, high = _square_and_add(p1, l1, u1, p2, l2, u2, phi)
    low, high = max(-1.0, low), min(1.0, high)
    if sides == "upper":
        low = -1.0
    elif sides == "lower":
        high = 1.0
    return Interval(low=low, high=high, method="newcombe-paired-m10", confidence_level=cl,
                    sides=sides, estimate=diff)
