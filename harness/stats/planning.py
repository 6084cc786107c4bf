"""Sample-size planning for "the harmful-output rate is below max_rate".

The test is the exact one-sided binomial test of H0: rate >= max_rate at level
alpha = 1 - confidence_level, i.e. "below" when the one-sided Clopper-Pearson upper bound is
under max_rate (statistics.md §2.3-2.5). For a candidate n the test rejects when
X <= c(n) = max{c : P(X <= c | n, max_rate) <= alpha}; its power at the expected rate p1 is
P(X <= c(n) | n, p1). Power is a sawtooth in n, so we search n exactly rather than trusting
the normal approximation.

Clustered designs multiply the independent-sample n by the design effect
deff = 1 + (m - 1) * icc for m samples per cluster (Kish 1965); see ``cluster_plan``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from harness.errors import StatsInputError
from harness.stats._checks import check_confidence, check_count, check_k_n, check_rate

# Above this many samples we stop searching: a plan this large is not a plan.
MAX_PLANNED_N = 200_000_000


@dataclass(frozen=True)
class SamplePlan:
    """Samples needed to show rate < max_rate, and how the decision is made.

    ``n`` independent samples; ``critical_count`` = the largest harmful count that still
    gives "below"; ``achieved_power`` at ``expected_rate``; ``zero_failure_n`` the smallest n
    for which 0 harmful gives "below". Cluster fields are filled when an ICC was given.
    """

    max_rate: float
    expected_rate: float
    confidence_level: float
    power: float
    n: int
    critical_count: int
    achieved_power: float
    zero_failure_n: int
    icc: float | None = None
    samples_per_cluster: int | None = None
    design_effect: float | None = None
    clusters: int | None = None
    total_samples: int | None = None
    zero_failure_clusters: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return asdict(self)


def zero_failure_n(max_rate: float, confidence_level: float = 0.95) -> int:
    """Smallest n whose one-sided exact upper bound with 0 harmful is strictly under max_rate.

    The bound at k = 0 is 1 - alpha^(1/n) (Clopper-Pearson), so n > ln(alpha)/ln(1 - max_rate);
    e.g. 299 for 1% at 95% ("rule of three", Hanley & Lippman-Hand 1983).
    """
    r = check_rate("max_rate", max_rate, open_interval=True)
    alpha = 1.0 - check_confidence(confidence_level)
    n = max(1, math.ceil(math.log(alpha) / math.log1p(-r)))
    # Guard the float edge on both sides with the defining inequality alpha^(1/n) > 1 - r.
    while n > 1 and -math.expm1(math.log(alpha) / (n - 1)) < r:
        n -= 1
    while -math.expm1(math.log(alpha) / n) >= r:
        n += 1
    return n


def _critical_counts(ns: np.ndarray, max_rate: float, alpha: float) -> np.ndarray:
    """c(n) = largest c with P(X <= c | n, max_rate) <= alpha; -1 when none."""
    c = stats.binom.ppf(alpha, ns, max_rate).astype(np.int64)  # smallest c with cdf >= alpha
    cdf = stats.binom.cdf(c, ns, max_rate)
    counts: np.ndarray = np.where(cdf <= alpha, c, c - 1)
    return counts


def _normal_n(max_rate: float, p1: float, alpha: float, power: float) -> float:
    # Normal approximation (statistics.md §2.5), only used to choose where to start searching.
    za = stats.norm.isf(alpha)
    zb = stats.norm.ppf(power)
    num = za * math.sqrt(max_rate * (1 - max_rate)) + zb * math.sqrt(p1 * (1 - p1))
    return float((num / (max_rate - p1)) ** 2)


def plan_samples(
    max_rate: float,
    expected_rate: float | None = None,
    confidence_level: float = 0.95,
    power: float = 0.8,
) -> SamplePlan:
    """Exact plan: smallest n whose exact test has at least ``power`` at ``expected_rate``.

    ``expected_rate=None`` or 0 plans for zero harmful samples (the zero-failure minimum,
    power 1 when the true rate is 0). ``expected_rate`` must be below ``max_rate``.
    """
    r = check_rate("max_rate", max_rate, open_interval=True)
    c = check_confidence(confidence_level)
    pw = check_rate("power", power, open_interval=True)
    p1 = 0.0 if expected_rate is None else check_rate("expected_rate", expected_rate)
    if p1 >= r:
        raise StatsInputError(
            f"expected_rate {p1:g} must be below max_rate {r:g}: no sample size can show a "
            "rate is below a threshold it is expected to meet or exceed")
    alpha = 1.0 - c
    n0 = zero_failure_n(r, c)
    if p1 == 0.0:
        return SamplePlan(r, p1, c, pw, n0, 0, 1.0, n0)
    start = max(n0, int(0.5 * _normal_n(r, p1, alpha, pw)))
    block = 4096
    lo = start
    while lo <= MAX_PLANNED_N:
        ns = np.arange(lo, lo + block, dtype=np.int64)
        crit = _critical_counts(ns, r, alpha)
        powers = np.where(crit >= 0, stats.binom.cdf(crit, ns, p1), 0.0)
        hit = np.flatnonzero(powers >= pw)
        if hit.size:
            i = int(hit[0])
            if i == 0 and lo > n0:
                # The approximate start overshot; search again from the true minimum.
                lo, start = n0, n0
                block = max(block, 4096)
                continue
            return SamplePlan(r, p1, c, pw, int(ns[i]), int(crit[i]), float(powers[i]), n0)
        lo += block
        block = min(block * 2, 1 << 20)
    raise StatsInputError(
        f"more than {MAX_PLANNED_N:,} samples would be needed to show a rate below {r:g} "
        f"when it is {p1:g}; use a larger margin between expected_rate and max_rate")


def samples_needed(
    max_rate: float,
    expected_rate: float | None = None,
    confidence_level: float = 0.95,
    power: float = 0.8,
) -> int:
    """Independent samples needed to show rate < max_rate (exact binomial search)."""
    return plan_samples(max_rate, expected_rate, confidence_level, power).n


def design_effect(icc: float, samples_per_cluster: float) -> float:
    """Kish design effect 1 + (m - 1) * icc for clusters of m samples."""
    rho = check_rate("icc", icc)
    if samples_per_cluster < 1:
        raise StatsInputError(f"samples_per_cluster must be >= 1, got {samples_per_cluster}")
    return 1.0 + (samples_per_cluster - 1.0) * rho


def clusters_needed(n_independent: int, icc: float, samples_per_cluster: int) -> int:
    """Clusters of m samples whose effective size n*m/deff reaches ``n_independent``."""
    m = check_count("samples_per_cluster", samples_per_cluster)
    deff = design_effect(icc, m)
    return max(1, math.ceil(n_independent * deff / m - 1e-9))


def samples_per_cluster_needed(n_independent: int, icc: float, clusters: int) -> int | None:
    """Samples per cluster so C clusters reach ``n_independent`` effective samples.

    Effective size C*m/(1 + (m-1)*icc) grows to at most C/icc as m grows, so when
    C <= n_independent * icc no number of samples per cluster suffices: returns None
    (add clusters, i.e. probes, instead).
    """
    rho = check_rate("icc", icc)
    cc = check_count("clusters", clusters)
    if cc == 0:
        raise StatsInputError("clusters must be >= 1")
    gap = cc - n_independent * rho
    if gap <= 0:
        return None
    return max(1, math.ceil(n_independent * (1.0 - rho) / gap - 1e-9))


def cluster_plan(
    max_rate: float,
    expected_rate: float | None = None,
    confidence_level: float = 0.95,
    power: float = 0.8,
    *,
    icc: float,
    samples_per_cluster: int | None = None,
    clusters: int | None = None,
) -> SamplePlan:
    """Plan for clustered samples (probes x samples) via the design effect.

    Give either ``samples_per_cluster`` (returns the clusters needed) or ``clusters``
    (returns the samples per cluster needed; ``samples_per_cluster`` None when impossible).
    """
    base = plan_samples(max_rate, expected_rate, confidence_level, power)
    if (samples_per_cluster is None) == (clusters is None):
        raise StatsInputError("give exactly one of samples_per_cluster or clusters")
    if samples_per_cluster is not None:
        m = check_count("samples_per_cluster", samples_per_cluster)
        if m == 0:
            raise StatsInputError("samples_per_cluster must be >= 1")
        c_needed = clusters_needed(base.n, icc, m)
        c_zero = clusters_needed(base.zero_failure_n, icc, m)
        deff = design_effect(icc, m)
        return SamplePlan(**{**asdict(base), "icc": icc, "samples_per_cluster": m,
                             "design_effect": deff, "clusters": c_needed,
                             "total_samples": c_needed * m, "zero_failure_clusters": c_zero})
    assert clusters is not None
    m_needed = samples_per_cluster_needed(base.n, icc, clusters)
    deff_c: float | None = design_effect(icc, m_needed) if m_needed is not None else None
    return SamplePlan(**{**asdict(base), "icc": icc, "samples_per_cluster": m_needed,
                         "design_effect": deff_c, "clusters": clusters,
                         "total_samples": None if m_needed is None else m_needed * clusters})


def more_samples_to_settle(
    k: int,
    n: int,
    max_rate: float,
    confidence_level: float = 0.95,
) -> int | None:
    """About how many more samples would settle an inconclusive verdict.

    Projection: if the observed rate k/n continues, the smallest extra m such that the
    one-sided Clopper-Pearson bound at n + m (with k/n * (n + m) harmful, a real-valued count
    via the beta-quantile form) falls strictly on one side of max_rate. Returns 0 when the
    verdict is already settled, None when the observed rate equals max_rate (no amount of
    data at that rate settles it) or the answer exceeds the planning cap. It is an estimate
    for planning, not a promise: the next samples will not have exactly the same rate.
    """
    k, n = check_k_n(k, n)
    r = check_rate("max_rate", max_rate, open_interval=True)
    a = 1.0 - check_confidence(confidence_level)
    p = k / n

    def settled(total: float) -> bool:
        kk = p * total
        if p < r:
            up = 1.0 if kk >= total else float(special.betaincinv(kk + 1, total - kk, 1 - a))
            return up < r
        low = 0.0 if kk <= 0 else float(special.betaincinv(kk, total - kk + 1, a))
        return low > r

    if p == r:
        return None
    # At the current counts use the exact integer bounds.
    if settled(float(n)):
        return 0
    hi = n
    while not settled(float(hi)):
        hi *= 2
        if hi > MAX_PLANNED_N:
            return None
    lo = hi // 2 if hi > n else n
    lo = max(lo, n)
    # settled(lo) is False, settled(hi) True: bisect on the integer total.
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if settled(float(mid)):
            hi = mid
        else:
            lo = mid
    return hi - n


HINT_MARGIN = 0.5
"""A hint is sized so the projected counts give a p-value under HINT_MARGIN * alpha: at the
observed rate that settles the verdict in at least half of the simulated continuations
(docs/statistics.md §9, bench/gate_tables.py)."""
_HINT_MAX_FACTOR = 1000


@dataclass(frozen=True)
class SettleHint:
    """What would settle an inconclusive verdict if the observed rates continue.

    ``kind``: "more samples" (``n`` more samples of every probe) or "more probes" (``n``
    more probes like these, each with the current samples per probe), whichever needs fewer
    new samples in all (``total_samples``); None when neither would (observed rate at the
    max, or beyond the planning cap).
    """

    kind: str | None
    n: int | None
    total_samples: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return asdict(self)


def _smallest(ok: Any, lo: int, cap: int) -> int | None:
    """Smallest integer x in (lo, cap] with ok(x), assuming ok is monotone; None if none."""
    hi = lo + 1
    while not ok(hi):
        if hi >= cap:
            return None
        lo, hi = hi, min(cap, hi * 2)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def population_pvalue_is_below(k: np.ndarray, n: np.ndarray, max_rate: float, level: float,
                               max_icc: float = 0.5) -> bool:
    """``clustered.population_pvalue_below(k, n, max_rate) < level`` as cheaply as the answer
    allows: its CLT component first (microseconds), the exact rare-harm one only if that is
    below the level, with its Chernoff screen (`harness.stats.rare.rare_pvalue_below`)."""
    from harness.stats.clustered import _kg_pvalue
    from harness.stats.rare import rare_pvalue_below

    return _kg_pvalue(k, n, max_rate) < level and rare_pvalue_below(k, n, max_rate, max_icc,
                                                                     level)


def settle_hint(
    k_per_cluster: Any,
    n_per_cluster: Any,
    max_rate: float,
    alpha: float,
    *,
    population: bool = True,
    max_icc: float = 0.5,
) -> SettleHint:
    """Project the observed per-probe rates forward and size the cheapest settling addition.

    "Below" side (observed rate under the max): more samples scales every probe's counts
    (k_j * s, n_j * s); more probes repeats the observed pattern of probes (the empirical
    distribution of probe rates). "Above" side: more samples on the fixed-suite exact test.
    The target is p < HINT_MARGIN * alpha at the projected counts.
    """
    from harness.stats.clustered import fixed_set_pvalue_below

    k = np.asarray(k_per_cluster, dtype=np.int64)
    n = np.asarray(n_per_cluster, dtype=np.int64)
    r = check_rate("max_rate", max_rate, open_interval=True)
    a = check_rate("alpha", alpha, open_interval=True)
    target = HINT_MARGIN * a
    kt, nt = int(k.sum()), int(n.sum())
    rate = kt / nt
    if rate > r:
        m = more_samples_to_settle(kt, nt, r, 1.0 - target)
        if m is None:
            return SettleHint(None, None, None)
        return SettleHint("more samples", math.ceil(m / k.size), math.ceil(m / k.size) * k.size)
    if rate == r:
        return SettleHint(None, None, None)

    def settles(kk: np.ndarray, nn: np.ndarray) -> bool:  # only the side of the target
        if population:
            return population_pvalue_is_below(kk, nn, r, target, max_icc)
        return fixed_set_pvalue_below(int(kk.sum()), int(nn.sum()), r) < target

    c = k.size
    m_bar = nt / c

    def more_samples_ok(d: int) -> bool:
        s = (n + d) / n
        return settles(np.minimum(np.rint(k * s).astype(np.int64), n + d), n + d)

    d = _smallest(more_samples_ok, 0, int(_HINT_MAX_FACTOR * max(1.0, m_bar)))
    options: list[SettleHint] = []
    if d is not None:
        options.append(SettleHint("more samples", d, d * c))
    if population:
        def more_probes_ok(extra: int) -> bool:
            idx = np.arange(c + extra) % c
            return settles(k[idx], n[idx])

        e = _smallest(more_probes_ok, 0, _HINT_MAX_FACTOR * c)
        if e is not None:
            options.append(SettleHint("more probes", e, round(e * m_bar)))
    if not options:
        return SettleHint(None, None, None)
    return min(options, key=lambda h: h.total_samples or 0)
