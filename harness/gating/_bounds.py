"""The bounds and p-values one gated group is decided on (pure): per component (the whole
group and each condition) the "below" p-value of its estimand and the fixed-suite "above"
p-value, the multiplicity step, and the bounds printed beside a verdict."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.gating._records import MAX_UNSCORABLE_SHARE, GateInput
from harness.stats.binomial import binomial_interval, exact_binomial_pvalue
from harness.stats.checks import check_clusters
from harness.stats.clustered import (
    fixed_set_pvalue_below,
    fixed_set_upper_bound,
    population_pvalue_below,
    population_upper_bound,
)
from harness.stats.multiplicity import benjamini_hochberg, holm
from harness.stats.requests import (
    effective_lower_bound,
    effective_pvalue_above,
    effective_pvalue_below,
    effective_upper_bound,
)


@dataclass(frozen=True)
class _Comp:
    name: str
    k: np.ndarray
    n: np.ndarray
    p_below: float
    p_above: float


def _p_below(k: np.ndarray, n: np.ndarray, r: float, population: bool, max_icc: float,
             deff: float = 1.0) -> float:
    if population:
        return population_pvalue_below(k, n, r, max_icc=max_icc)
    if deff > 1.0:
        return effective_pvalue_below(int(k.sum()), int(n.sum()), r, deff)
    return fixed_set_pvalue_below(int(k.sum()), int(n.sum()), r)


def _upper(k: np.ndarray, n: np.ndarray, a: float, population: bool, max_icc: float,
           deff: float = 1.0) -> float:
    if population:
        return population_upper_bound(k, n, a, max_icc=max_icc).high
    return _fixed_upper(int(k.sum()), int(n.sum()), a, deff)


def _fixed_upper(k: int, n: int, a: float, deff: float = 1.0) -> float:
    """"This suite": exact bound on the pooled counts, at the request design effect."""
    if deff > 1.0:
        return effective_upper_bound(k, n, a, deff)
    return fixed_set_upper_bound(k, n, a)


def _fixed_lower(k: int, n: int, a: float, deff: float = 1.0) -> float:
    if deff > 1.0:
        return effective_lower_bound(k, n, a, deff)
    return 0.0 if k <= 0 else float(binomial_interval(k, n, 1.0 - a, "clopper-pearson",
                                                      sides="lower").low)


def _p_above(k: np.ndarray, n: np.ndarray, r: float, deff: float) -> float:
    if deff > 1.0:
        return effective_pvalue_above(int(k.sum()), int(n.sum()), r, deff)
    return exact_binomial_pvalue(int(k.sum()), int(n.sum()), r, "greater")


def _components(g: GateInput, r: float, population: bool, max_icc: float) -> list[_Comp]:
    k, n = check_clusters(g.k_per_cluster, g.n_per_cluster)
    d = g.request_dependence.design_effect
    out = [_Comp("all", k, n, _p_below(k, n, r, population, max_icc, d), _p_above(k, n, r, d))]
    for c in g.conditions:
        pairs = [(a, b) for a, b in zip(c.k_per_cluster, c.n_per_cluster, strict=True) if b > 0]
        if not pairs:
            continue
        ck, cn = check_clusters([a for a, _ in pairs], [b for _, b in pairs])
        out.append(_Comp(f"{c.by}={c.key}", ck, cn, _p_below(ck, cn, r, population, max_icc, d),
                         _p_above(ck, cn, r, d)))
    return out


def _adjust(p: list[float], alpha: float, multiplicity: str) -> tuple[list[float], list[float]]:
    """Adjusted p-values and the one-sided tail each group is tested at (its deciding level).

    Holm tests the i-th smallest p-value at alpha / (m - i) (Holm 1979); its adjusted
    p-value is < alpha exactly when it and every smaller one pass their levels.
    """
    m = len(p)
    if m == 0:
        return [], []
    if multiplicity == "holm":
        order = np.argsort(p, kind="stable")
        levels = [0.0] * m
        for rank, i in enumerate(order):
            levels[int(i)] = alpha / (m - rank)
        return list(holm(p, alpha).adjusted), levels
    if multiplicity == "benjamini-hochberg":
        order = np.argsort(p, kind="stable")
        levels = [0.0] * m
        for rank, i in enumerate(order):
            levels[int(i)] = alpha * (rank + 1) / m
        return list(benjamini_hochberg(p, alpha).adjusted), levels
    return list(p), [alpha] * m


def _n_all(g: GateInput) -> int:
    return g.n_samples if g.n_samples else int(np.sum(g.n_per_cluster)) + g.n_unscorable


def _spread(u: int, n: np.ndarray) -> np.ndarray:
    """``u`` extra samples spread over the clusters in proportion to their sizes."""
    share: np.ndarray = np.zeros(n.shape, dtype=np.int64)
    if u <= 0:
        return share
    share = np.floor(u * n / n.sum()).astype(np.int64)
    share[: u - int(share.sum())] += 1
    return share


def _worst_case_population(k: np.ndarray, n: np.ndarray, u: int, a: float,
                           max_icc: float) -> float:
    extra = _spread(u, n)
    return population_upper_bound(k + extra, n + extra, a, max_icc=max_icc).high


def _reason(verdict: str, blocked: str, p: float, level: float, adj: float, alpha: float,
            population: bool) -> str:
    claim = "prompts like these" if population else "this suite"
    if verdict == "above":
        return "this suite's prompts exceed the max (fixed-suite exact test)"
    if verdict == "below":
        return f"below for {claim} in every condition"
    if blocked:
        return (f"{blocked}: more than {MAX_UNSCORABLE_SHARE:.0%} of the answers were blocked, "
                "unclear or errors, so the scored ones cannot show the rate")
    if p < level and not adj < alpha:
        return "its bound is below the max, but the Holm step-down stopped at an earlier group"
    return f"the bound for {claim} does not exclude the max"
