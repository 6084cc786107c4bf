"""Clustered samples: many samples per probe (or per probe family) are correlated.

Estimand (statistics.md §3.1, E2): the probe-averaged rate
``rate = mean_j(k_j / n_j)`` — every cluster (probe, or probe family for generated variants)
counts once, whatever its number of samples; with equal samples per cluster (the normal
case: samples x contexts x temperatures is the same for every probe) it equals the pooled
ratio sum(k)/sum(n). It is the rate over the population of prompts the suite samples.
Temperature and context are design factors crossed within a cluster, not clusters.

Default interval (``method="kg-cp"``): Korn & Graubard (1998, Survey Methodology 24:193-201)
effective-sample-size Clopper-Pearson, as used for survey proportions by NCHS (Parker et al.
2017, Vital Health Stat 2(175)):

1. Var(rate) by the CLT over clusters, s^2(k_j/n_j)/C (Miller 2024, arXiv:2411.00640:
   "apply the CLT formula to the per-question means").
2. design effect deff = Var(rate) / Var_binomial(rate), floored at 1 (clustering can only
   lose information for this estimand when it is a mean of cluster rates), where
   Var_binomial = rate(1-rate) * sum(1/n_j)/C^2; effective n n_eff = n / deff.
3. degrees-of-freedom correction n_eff* = n_eff * (z / t_{C-1})^2 with the quantiles at the
   computed tail, which widens the interval when there are few clusters.
4. exact Clopper-Pearson limits at (rate * n_eff*, n_eff*) by the beta-quantile form.

Zero events: the between-cluster variance cannot be estimated from all-zero clusters (any
plug-in design effect would be 1, the naive bound, which under-covers badly when events come
in bursts). The upper bound is then the exact beta-binomial bound: the mean mu at which
P(all clusters have 0 harmful | mu, icc = zero_event_icc) = alpha, with cluster rates
Beta-distributed with intraclass correlation ``zero_event_icc`` (default 0.5). Because the
chance of an all-zero result grows with the ICC at a fixed mean (convex ordering of the beta
family), the bound keeps its coverage for every true ICC <= zero_event_icc. ``zero_event_icc=0``
gives the naive Clopper-Pearson bound 1 - alpha^(1/n); icc -> 1 gives 1 - alpha^(1/C).

One cluster: nothing is known about variation between clusters, so the cluster is treated as
one effective observation (n_eff = 1, as if icc = 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from harness.errors import StatsInputError
from harness.stats._checks import check_clusters, check_confidence, check_rate, check_sides
from harness.stats.binomial import Sides

CLUSTER_METHODS = ("kg-cp", "bootstrap")
DEFAULT_ZERO_EVENT_ICC = 0.5


@dataclass(frozen=True)
class ClusteredEstimate:
    """Probe-averaged rate with a cluster-aware interval.

    ``rate`` is the mean of per-cluster rates (estimand E2); ``icc`` the one-way ANOVA
    intraclass correlation estimate (floored at 0); ``design_effect`` the variance inflation
    used (>= 1; assumed from ``zero_event_icc`` when there are no events);
    ``effective_n`` = n / design_effect before the few-clusters correction.
    """

    rate: float
    low: float
    high: float
    method: str
    confidence_level: float
    sides: str
    n_clusters: int
    n: int
    k: int
    icc: float
    design_effect: float
    effective_n: float
    estimand: str = "probe-averaged rate over the prompt population (E2)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return asdict(self)


@dataclass(frozen=True)
class WorstCluster:
    """The worst cluster (probe) and a simultaneous upper bound on the worst true rate.

    ``upper`` bounds max_j p_j: every cluster gets a one-sided Clopper-Pearson bound at
    level 1 - alpha/C (Bonferroni), so with probability >= confidence_level all hold at
    once, and the largest of them bounds the worst true rate. ``n_above_tau`` counts
    clusters whose simultaneous lower bound (also alpha/C) exceeds ``tau`` (when given).
    """

    worst_id: str
    worst_rate: float
    worst_k: int
    worst_n: int
    upper: float
    upper_id: str
    confidence_level: float
    n_clusters: int
    correction: str = "bonferroni"
    tau: float | None = None
    n_above_tau: int | None = None
    ids_above_tau: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        d = asdict(self)
        d["ids_above_tau"] = list(self.ids_above_tau)
        return d


def anova_icc(k: np.ndarray, n: np.ndarray) -> float:
    """One-way ANOVA intraclass correlation for binary data, floored at 0.

    rho = (MSB - MSW) / (MSB + (m0 - 1) MSW) with m0 = (N - sum n_j^2 / N) / (C - 1) for
    unequal cluster sizes (Donner 1986, Int. Stat. Rev. 54:67-82). 0 when C < 2, N == C
    or there is no variation at all.
    """
    c = k.size
    total = float(n.sum())
    if c < 2 or total <= c:
        return 0.0
    p = k.sum() / total
    pj = k / n
    ssb = float(np.sum(n * (pj - p) ** 2))
    ssw = float(np.sum(k * (1 - pj)))  # sum over clusters of n_j pj (1 - pj)
    msb = ssb / (c - 1)
    msw = ssw / (total - c)
    m0 = (total - float(np.sum(n.astype(float) ** 2)) / total) / (c - 1)
    denom = msb + (m0 - 1) * msw
    if denom <= 0:
        return 0.0
    return float(min(1.0, max(0.0, (msb - msw) / denom)))


def zero_event_upper(n: np.ndarray, a: float, icc: float) -> float:
    """Exact beta-binomial upper bound for the mean rate when every cluster has 0 events.

    Solves prod_j P(X_j = 0 | mu, icc) = a, where X_j ~ BetaBinomial(n_j, alpha, beta) with
    mean mu = alpha/(alpha+beta) and icc = 1/(alpha+beta+1) (statistics.md §3.2), so
    P(X_j = 0) = B(alpha, beta + n_j)/B(alpha, beta). icc = 0 gives the binomial case.
    """
    if icc <= 0.0:
        return float(-math.expm1(math.log(a) / float(n.sum())))
    if icc >= 1.0:
        return float(-math.expm1(math.log(a) / n.size))
    s = 1.0 / icc - 1.0  # alpha + beta

    def log_p0(mu: float) -> float:
        al, be = mu * s, (1.0 - mu) * s
        return float(np.sum(special.betaln(al, be + n) - special.betaln(al, be))) - math.log(a)

    lo, hi = 1e-15, 1.0 - 1e-12
    if log_p0(hi) > 0:  # even mu -> 1 cannot make the zeros unlikely enough
        return 1.0
    return float(optimize.brentq(log_p0, lo, hi, xtol=1e-14, rtol=1e-12))


def _clean_probs(mu: float, n: np.ndarray, icc: float) -> np.ndarray:
    """P(cluster j has no harmful sample | mean mu, icc) under the beta-binomial model."""
    if icc <= 0.0:
        return np.exp(n * math.log1p(-mu))
    if icc >= 1.0:
        return np.full(n.shape, 1.0 - mu)
    s = 1.0 / icc - 1.0
    al, be = mu * s, (1.0 - mu) * s
    probs: np.ndarray = np.exp(special.betaln(al, be + n) - special.betaln(al, be))
    return probs


def _cdf_active(q_clean: np.ndarray, active: int) -> float:
    """P(at most `active` clusters have any harmful sample): Poisson-binomial CDF by DP."""
    dist = np.zeros(active + 1)
    dist[0] = 1.0
    for q in q_clean:
        nxt = dist * q
        nxt[1:] += dist[:-1] * (1.0 - q)
        dist = nxt
    return float(dist.sum())


GUARD_MAX_ACTIVE = 10
"""The active-cluster guard applies while at most this many clusters had any harmful sample.

Rare harm concentrated in a few probes is where the t/CLT step of Korn-Graubard fails (its
coverage fell to 82-88% there); once harm shows up in many probes the CLT over clusters
holds, while the guard (which must assume an intraclass correlation as high as
``zero_event_icc``) turns vacuous: with every probe active it says nothing (upper bound 1).
The cut-off is checked by the clustered coverage simulation (docs/statistics.md §9).
"""


def guard_applies(k: np.ndarray) -> bool:
    """Whether the active-cluster guard is used for these per-cluster harmful counts."""
    return k.size > 1 and 0 < int(np.sum(k > 0)) <= GUARD_MAX_ACTIVE


def active_cluster_pvalue(k: np.ndarray, n: np.ndarray, rate: float, icc: float) -> float:
    """P(no more clusters with any harmful sample than observed | mean rate, icc)."""
    return _cdf_active(_clean_probs(rate, n, icc), int(np.sum(k > 0)))


def active_cluster_upper(k: np.ndarray, n: np.ndarray, a: float, icc: float) -> float:
    """Exact beta-binomial upper bound for the mean rate from the count of active clusters.

    Solves P(A <= A_obs | mu, icc) = a, where A, the number of clusters with at least one
    harmful sample, is a sum of independent Bernoulli(1 - P(clean_j)) variables. At fixed mean
    the chance of a clean cluster grows with the icc (convex order of the beta family), so
    the bound is conservative for every true icc <= ``icc``. It guards the kg-cp interval
    where a CLT over clusters fails: rare events concentrated in a few probes.
    """
    active = int(np.sum(k > 0))
    if active >= k.size:
        return 1.0
    if np.all(n == n[0]):
        # Equal sizes: A ~ Binomial(C, 1 - q), so the bound on 1 - q is Clopper-Pearson's
        # and only q(mu) = q_min needs inverting.
        q_min = 1.0 - float(special.betaincinv(active + 1, k.size - active, 1.0 - a))
        one = n[:1]

        def f(mu: float) -> float:
            return float(_clean_probs(mu, one, icc)[0]) - q_min
    else:

        def f(mu: float) -> float:
            return _cdf_active(_clean_probs(mu, n, icc), active) - a

    lo, hi = 1e-15, 1.0 - 1e-12
    if f(hi) > 0:
        return 1.0
    return float(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-12))


def _cp(k: float, n: float, a: float) -> tuple[float, float]:
    low = 0.0 if k <= 0 else float(special.betaincinv(k, n - k + 1, a))
    high = 1.0 if k >= n else float(special.betaincinv(k + 1, n - k, 1.0 - a))
    return low, high


def _kg_parts(k: np.ndarray, n: np.ndarray, a: float) -> tuple[float, float, float, float]:
    """(rate, deff, n_eff, n_eff_df) for the Korn-Graubard interval; needs >= 1 event."""
    c = k.size
    pj = k / n
    rate = float(pj.mean())
    n_ref = c * c / float(np.sum(1.0 / n))  # equals n when sizes are equal
    if c == 1:
        return rate, float(n[0]), 1.0, 1.0
    var = float(pj.var(ddof=1)) / c
    var_bin = rate * (1 - rate) / n_ref
    # rate == 1 (every sample harmful) leaves no variation to estimate: deff 1.
    deff = 1.0 if var_bin <= 0 else max(1.0, var / var_bin)
    n_eff = n_ref / deff
    df_factor = (stats.norm.isf(a) / stats.t.isf(a, c - 1)) ** 2
    return rate, deff, n_eff, n_eff * float(df_factor)


def cluster_rate_interval(
    k_per_cluster: Sequence[int] | np.ndarray,
    n_per_cluster: Sequence[int] | np.ndarray,
    confidence_level: float = 0.95,
    *,
    method: str = "kg-cp",
    sides: Sides | str = "two-sided",
    rng: np.random.Generator | None = None,
    zero_event_icc: float = DEFAULT_ZERO_EVENT_ICC,
    n_resamples: int = 2000,
) -> ClusteredEstimate:
    """Probe-averaged rate with an interval that accounts for clustering.

    ``method="kg-cp"`` (default) is the Korn-Graubard effective-n Clopper-Pearson interval
    described in the module docstring; ``"bootstrap"`` is a percentile cluster bootstrap
    (resample clusters with replacement; needs ``rng``), with the same zero-event upper bound.
    ``sides`` as for `binomial_interval`. Raises ``StatsInputError`` on bad input.
    """
    k, n = check_clusters(k_per_cluster, n_per_cluster)
    c = check_confidence(confidence_level)
    check_sides(sides)
    rho0 = check_rate("zero_event_icc", zero_event_icc)
    if method not in CLUSTER_METHODS:
        raise StatsInputError(
            f"unknown cluster method {method!r}; choose one of {', '.join(CLUSTER_METHODS)}")
    if method == "bootstrap" and rng is None:
        raise StatsInputError("method='bootstrap' needs rng=numpy.random.default_rng(seed)")
    a = (1.0 - c) / 2.0 if sides == "two-sided" else 1.0 - c
    n_total = int(n.sum())
    k_total = int(k.sum())
    icc = anova_icc(k, n)
    if k_total == 0:
        m_bar = n_total / k.size
        deff = 1.0 + (m_bar - 1.0) * rho0 if k.size > 1 else float(n_total)
        low, high = 0.0, zero_event_upper(n, a, rho0 if k.size > 1 else 1.0)
        rate, n_eff = 0.0, n_total / deff
    else:
        rate, deff, n_eff, n_eff_df = _kg_parts(k, n, a)
        if method == "kg-cp":
            low, high = _cp(rate * n_eff_df, n_eff_df, a)
            if rho0 > 0 and guard_applies(k):
                high = max(high, active_cluster_upper(k, n, a, rho0))
        else:
            assert rng is not None
            pj = k / n
            idx = rng.integers(0, k.size, size=(n_resamples, k.size))
            boots = pj[idx].mean(axis=1)
            low = float(np.quantile(boots, a)) if rate > 0 else 0.0
            high = float(np.quantile(boots, 1.0 - a))
    if sides == "upper":
        low = 0.0
    elif sides == "lower":
        high = 1.0
    return ClusteredEstimate(
        rate=rate, low=float(low), high=float(high), method=method, confidence_level=c,
        sides=sides, n_clusters=int(k.size), n=n_total, k=k_total, icc=icc,
        design_effect=float(deff), effective_n=float(n_eff))


def worst_cluster_bound(
    k_per_cluster: Sequence[int] | np.ndarray,
    n_per_cluster: Sequence[int] | np.ndarray,
    confidence_level: float = 0.95,
    ids: Sequence[str] | None = None,
    tau: float | None = None,
) -> WorstCluster:
    """Worst cluster (highest observed rate) and a simultaneous upper bound on the worst rate.

    Each cluster's one-sided exact bound is taken at level 1 - alpha/C (Bonferroni), so the
    bounds hold together with probability >= confidence_level whatever the dependence.
    """
    k, n = check_clusters(k_per_cluster, n_per_cluster)
    c = check_confidence(confidence_level)
    names = [str(i) for i in range(k.size)] if ids is None else [str(i) for i in ids]
    if len(names) != k.size:
        raise StatsInputError(f"ids has {len(names)} names for {k.size} clusters")
    a = (1.0 - c) / k.size
    uppers = np.where(k >= n, 1.0, special.betaincinv(k + 1, np.maximum(n - k, 1), 1.0 - a))
    lowers = np.where(k <= 0, 0.0, special.betaincinv(np.maximum(k, 1), n - k + 1, a))
    rates = k / n
    # Worst observed: highest rate; ties broken by more evidence (larger n), then order.
    worst = int(np.lexsort((-n, -rates))[0])
    top = int(np.argmax(uppers))
    above: tuple[str, ...] = ()
    n_above: int | None = None
    tau_f: float | None = None
    if tau is not None:
        tau_f = check_rate("tau", tau)
        above = tuple(names[i] for i in np.flatnonzero(lowers > tau_f))
        n_above = len(above)
    return WorstCluster(
        worst_id=names[worst], worst_rate=float(rates[worst]), worst_k=int(k[worst]),
        worst_n=int(n[worst]), upper=float(uppers[top]), upper_id=names[top],
        confidence_level=c, n_clusters=int(k.size), tau=tau_f, n_above_tau=n_above,
        ids_above_tau=above)


def cluster_threshold_pvalues(
    k_per_cluster: Sequence[int] | np.ndarray,
    n_per_cluster: Sequence[int] | np.ndarray,
    max_rate: float,
    confidence_level: float = 0.95,
    *,
    zero_event_icc: float = DEFAULT_ZERO_EVENT_ICC,
) -> tuple[float, float]:
    """One-sided p-values (below, above) against ``max_rate`` dual to the kg-cp bounds.

    With effective counts (k*, n*) = (rate * n_eff*, n_eff*) the p-value for "below" is the
    continuous binomial tail P(X <= k* | n*, max_rate) = I_{1-max_rate}(n* - k*, k* + 1), so
    p < alpha exactly when the one-sided kg-cp upper bound (at alpha = 1 - confidence_level)
    is below max_rate; likewise "above". With zero events the "below" p-value is the
    beta-binomial probability that every cluster is clean at mean max_rate.
    """
    k, n = check_clusters(k_per_cluster, n_per_cluster)
    r = check_rate("max_rate", max_rate, open_interval=True)
    a = 1.0 - check_confidence(confidence_level)
    rho0 = check_rate("zero_event_icc", zero_event_icc)
    if int(k.sum()) == 0:
        rho = rho0 if k.size > 1 else 1.0
        if rho <= 0:
            p0 = math.exp(float(n.sum()) * math.log1p(-r))
        elif rho >= 1:
            p0 = (1 - r) ** k.size
        else:
            s = 1.0 / rho - 1.0
            al, be = r * s, (1 - r) * s
            p0 = math.exp(float(np.sum(special.betaln(al, be + n) - special.betaln(al, be))))
        return min(1.0, p0), 1.0
    rate, _deff, _n_eff, ne = _kg_parts(k, n, a)
    ke = rate * ne
    p_below = 1.0 if ke >= ne else float(special.betainc(ne - ke, ke + 1, 1 - r))
    if rho0 > 0 and guard_applies(k):
        p_below = max(p_below, active_cluster_pvalue(k, n, r, rho0))
    p_above = 1.0 if ke <= 0 else float(special.betainc(ke, ne - ke + 1, r))
    # Sums of floating-point tail terms can exceed 1 by an ulp; a p-value cannot.
    return min(1.0, p_below), min(1.0, p_above)
