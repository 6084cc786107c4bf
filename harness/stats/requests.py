"""Dependence among the choices of one request, and exact bounds on effective counts.

The `n` choices of one request (`n > 1`) come from one call: an endpoint may draw them
independently (the API's contract) or not (a cache, a seed applied to every choice, a model
that decides once per call). Analyses that treat samples as independent observations (the
"this suite" bound, the fixed-suite "above" test) therefore cluster on the request: the
variance of the pooled count is inflated by the design effect of requests (Kish 1965,
Survey Sampling, §5.4; applied to a binomial method as Rao & Scott 1992, Biometrics
48:577-585, do), and the exact binomial bound is taken at the effective counts k/deff,
n/deff.

The intraclass correlation of choices within a request is the one-way ANOVA estimator of
Donner (1986, Int. Stat. Rev. 54:67-82, eq. 2.2) with the cell (probe x context x
temperature) as a fixed effect: requests of one cell have the same true rate, so only
their differences within a cell are evidence of dependence (cells of one suite differ by
design, which the exact bound already allows for: Hoeffding 1956). It can be estimated only
where cells have several requests; with fewer than `MIN_DEPENDENCE_DF` such degrees of
freedom, or with no variation at all, it is reported as not estimable and the choices are
taken as independent (the assumption is stated in the summary).

Pure functions of counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scipy import special, stats

from harness.errors import StatsInputError
from harness.stats._checks import check_k_n, check_rate
from harness.stats.binomial import (
    Interval,
    _square_and_add,
    _wilson,
    difference_interval,
    exact_binomial_pvalue,
)

MIN_DEPENDENCE_DF = 10
"""Between-request degrees of freedom (requests beyond the first, over cells) needed before
the within-request correlation is estimated rather than assumed 0."""
ICC_UPPER_LEVEL = 0.75
"""The design effect uses a one-sided 75% upper confidence limit of the ICC (the F interval
of Searle 1971, Linear Models, §9.7, with Donner's m0 for unequal sizes), not the point
estimate: the estimate is smallest exactly when few harmful samples were seen, so with the
point estimate the bound undercovered (93.8% at ICC 0.4 in docs/statistics.md §4's grid);
the 75% limit costs a design effect of about 1.14 when the choices are independent."""


@dataclass(frozen=True)
class RequestDependence:
    """How dependent the choices of one request were, and what it costs.

    ``icc``: estimated intraclass correlation of choices within a request (clipped to
    [0, 1]; 0 when not estimable); ``icc_upper`` its one-sided `ICC_UPPER_LEVEL` upper limit;
    ``design_effect``: variance inflation of the pooled count over these requests,
    sum m_r (1 + (m_r - 1) icc_upper) / sum m_r (1 when every request has one choice);
    ``n_requests``: requests with a scored choice; ``df``: between-request degrees
    of freedom within cells; ``basis``: "estimated", "one choice per request", "not
    estimable: ..." (why the choices were taken as independent).
    """

    icc: float
    icc_upper: float
    design_effect: float
    n_requests: int
    n_choices: int
    df: int
    basis: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return asdict(self)


INDEPENDENT = RequestDependence(0.0, 0.0, 1.0, 0, 0, 0, "one choice per request")


def _icc_of(f_ratio: float, m0: float) -> float:
    return min(1.0, max(0.0, (f_ratio - 1.0) / (f_ratio + m0 - 1.0)))


def request_icc(cells: Sequence[Sequence[Sequence[int]]], min_df: int = MIN_DEPENDENCE_DF,
                upper_level: float = ICC_UPPER_LEVEL) -> tuple[float, float, int, str]:
    """(icc, icc_upper, df, basis) of choices within a request from per-cell lists of
    (harmful, scored) counts per request: Donner's (1986) ANOVA estimator, cells as a fixed
    effect, and its one-sided upper limit at ``upper_level``.

    MSB = sum_c sum_r m_r (p_r - p_c)^2 / sum_c (R_c - 1), MSW = sum h_r (m_r - h_r) / m_r /
    sum_c (M_c - R_c), m0 = sum_c (M_c - sum_r m_r^2 / M_c) / sum_c (R_c - 1), F = MSB/MSW,
    icc = (F - 1) / (F + m0 - 1); the upper limit puts F / F_{1 - level}(df_b, df_w) for F.
    """
    ssb = ssw = size_sum = 0.0
    df_b = df_w = 0
    for reqs in cells:
        rs = [(h, m) for h, m in reqs if m > 0]
        if len(rs) < 2:
            continue
        total_h = sum(h for h, _ in rs)
        total_m = sum(m for _, m in rs)
        p_c = total_h / total_m
        ssb += sum((h - m * p_c) ** 2 / m for h, m in rs)
        ssw += sum(h * (m - h) / m for h, m in rs)
        df_b += len(rs) - 1
        df_w += total_m - len(rs)
        size_sum += total_m - sum(m * m for _, m in rs) / total_m
    if df_b < min_df:
        return 0.0, 0.0, df_b, (f"not estimable: {df_b} repeated request(s) within cells "
                                f"(needs {min_df}); choices taken as independent")
    if df_w == 0:
        return 0.0, 0.0, df_b, "one choice per request"
    if ssb <= 0.0 and ssw <= 0.0:
        return 0.0, 0.0, df_b, ("not estimable: no variation within cells; choices taken "
                                "as independent")
    if ssw <= 0.0:  # every request all harmful or all safe, and they differ: copies
        return 1.0, 1.0, df_b, "estimated"
    f_ratio = (ssb / df_b) / (ssw / df_w)
    m0 = size_sum / df_b
    f_low = float(stats.f.ppf(1.0 - upper_level, df_b, df_w))
    return _icc_of(f_ratio, m0), _icc_of(f_ratio / f_low, m0), df_b, "estimated"


def request_dependence(cells: Sequence[Sequence[Sequence[int]]],
                       min_df: int = MIN_DEPENDENCE_DF) -> RequestDependence:
    """The dependence of a group's requests (per cell: (harmful, scored) per request) and
    the design effect of its pooled count (module docstring)."""
    sizes = [m for reqs in cells for _, m in reqs if m > 0]
    n = sum(sizes)
    if not sizes or max(sizes) <= 1:
        return RequestDependence(0.0, 0.0, 1.0, len(sizes), n, 0, "one choice per request")
    icc, upper, df, basis = request_icc(cells, min_df)
    deff = sum(m * (1.0 + (m - 1) * upper) for m in sizes) / n
    return RequestDependence(icc, upper, max(1.0, deff), len(sizes), n, df, basis)


def fixed_set_pvalue_below(k: int, n: int, max_rate: float) -> float:
    """Exact one-sided binomial p-value P(X <= k | n, max_rate) for "this suite" (E1) claims.

    Given the prompts, the pooled count of independent observations is Poisson-binomial, and
    the binomial lower tail is conservative for it (Hoeffding 1956, Ann. Math. Stat. 27:713).
    """
    kk, nn = check_k_n(k, n)
    r = check_rate("max_rate", max_rate, open_interval=True)
    return float(min(1.0, stats.binom.cdf(kk, nn, r)))


def fixed_set_upper_bound(k: int, n: int, alpha: float = 0.05) -> float:
    """One-sided exact (Clopper-Pearson) upper bound at tail ``alpha`` for "this suite"."""
    kk, nn = check_k_n(k, n)
    a = check_rate("alpha", alpha, open_interval=True)
    return 1.0 if kk >= nn else float(special.betaincinv(kk + 1, nn - kk, 1.0 - a))


def _effective(k: int, n: int, deff: float) -> tuple[float, float]:
    kk, nn = check_k_n(k, n)
    if not deff >= 1.0:
        raise StatsInputError(f"design_effect must be a number >= 1, got {deff!r}")
    return kk / deff, nn / deff


def effective_upper_bound(k: int, n: int, alpha: float, design_effect: float = 1.0) -> float:
    """One-sided exact (Clopper-Pearson) upper bound at tail ``alpha`` on the effective
    counts k/deff, n/deff: the beta quantile B(1 - alpha; k' + 1, n' - k'), which at
    deff = 1 is the integer bound."""
    a = check_rate("alpha", alpha, open_interval=True)
    ke, ne = _effective(k, n, design_effect)
    if design_effect == 1.0:
        ke, ne = int(k), int(n)
    return 1.0 if ke >= ne else float(special.betaincinv(ke + 1, ne - ke, 1.0 - a))


def effective_lower_bound(k: int, n: int, alpha: float, design_effect: float = 1.0) -> float:
    """One-sided exact lower bound B(alpha; k', n' - k' + 1) on the effective counts."""
    a = check_rate("alpha", alpha, open_interval=True)
    ke, ne = _effective(k, n, design_effect)
    if design_effect == 1.0:
        ke, ne = int(k), int(n)
    return 0.0 if ke <= 0 else float(special.betaincinv(ke, ne - ke + 1, a))


def effective_pvalue_below(k: int, n: int, rate: float, design_effect: float = 1.0) -> float:
    """P(X <= k') under rate, continued to real counts: 1 - I_rate(k' + 1, n' - k'); below
    alpha exactly when `effective_upper_bound` at alpha is below ``rate``."""
    r = check_rate("rate", rate, open_interval=True)
    ke, ne = _effective(k, n, design_effect)
    if design_effect == 1.0:
        return exact_binomial_pvalue(int(k), int(n), r, "less")
    if ke >= ne:
        return 1.0
    return float(min(1.0, special.betainc(ne - ke, ke + 1.0, 1.0 - r)))


def effective_pvalue_above(k: int, n: int, rate: float, design_effect: float = 1.0) -> float:
    """P(X >= k') under rate, continued to real counts: I_rate(k', n' - k' + 1); below alpha
    exactly when `effective_lower_bound` at alpha is above ``rate``."""
    r = check_rate("rate", rate, open_interval=True)
    ke, ne = _effective(k, n, design_effect)
    if design_effect == 1.0:
        return exact_binomial_pvalue(int(k), int(n), r, "greater")
    if ke <= 0:
        return 1.0
    return float(min(1.0, special.betainc(ke, ne - ke + 1.0, r)))


def effective_difference_interval(k1: int, n1: int, k2: int, n2: int,
                                  confidence_level: float, design_effect_1: float = 1.0,
                                  design_effect_2: float = 1.0) -> Interval:
    """Newcombe's hybrid score interval (1998b, method 10) for rate1 - rate2 of two
    independent runs, each at its own request design effect: Wilson limits at the effective
    counts k/deff, n/deff, combined by square-and-add. At deff 1 in both it is
    `difference_interval` itself."""
    if design_effect_1 == 1.0 and design_effect_2 == 1.0:
        return difference_interval(k1, n1, k2, n2, confidence_level)
    a1, m1 = _effective(k1, n1, design_effect_1)
    a2, m2 = _effective(k2, n2, design_effect_2)
    c = check_rate("confidence_level", confidence_level, open_interval=True)
    z = float(stats.norm.isf((1.0 - c) / 2.0))
    p1, p2 = a1 / m1, a2 / m2
    l1, u1 = _wilson(a1, m1, z)
    l2, u2 = _wilson(a2, m2, z)
    low, high = _square_and_add(p1, l1, u1, p2, l2, u2)
    return Interval(low=max(-1.0, low), high=min(1.0, high), method="newcombe", confidence_level=c,
                    sides="two-sided", estimate=p1 - p2)
