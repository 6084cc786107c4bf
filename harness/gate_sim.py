"""Simulation proofs of the gate: coverage, family-wise error, power, samples to decision.

Pure: every function takes a `numpy.random.Generator` and calls the real decision functions
the CLI runs (`harness.gating.gate_groups` and the p-values it uses, which are exactly dual
to the bounds it prints). `bench/gate_tables.py` prints the tables of docs/statistics.md §9
from these functions; tests/test_gate_sim.py runs a fast subset and, marked slow, the grid.

Probe rates: ``shape="beta"`` draws p_j ~ Beta with mean ``rate`` and intraclass correlation
``icc`` (skewed for small rates); ``shape="bursty"`` gives a fraction rate/h of probes the
rate h = rate + icc (1 - rate) and the others 0 (a few probes carry all the harm; the worst
case of the rare-harm bound). icc 0 is binomial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.gating import GateInput, gate_groups
from harness.stats.clustered import (
    fixed_set_upper_bound,
    population_pvalue_below,
    population_upper_bound,
)
from harness.stats.planning import settle_hint
from harness.stats.requests import INDEPENDENT, request_dependence

SHAPES = ("beta", "bursty")


def probe_rates(rng: np.random.Generator, rate: float, icc: float, shape: str, clusters: int,
                reps: int) -> np.ndarray:
    """True per-probe rates, shape (reps, clusters), with mean ``rate`` and ICC ``icc``."""
    if icc <= 0.0 or rate <= 0.0:
        return np.full((reps, clusters), rate)
    if shape == "beta":
        s = 1.0 / icc - 1.0
        return rng.beta(rate * s, (1.0 - rate) * s, size=(reps, clusters))
    if shape == "bursty":
        h = rate + icc * (1.0 - rate)
        return np.where(rng.random((reps, clusters)) < rate / h, h, 0.0)
    raise ValueError(f"unknown shape {shape!r}; use one of {SHAPES}")


def draw_counts(rng: np.random.Generator, rate: float, icc: float, shape: str, clusters: int,
                per: int, reps: int) -> np.ndarray:
    """Harmful counts per probe, shape (reps, clusters), ``per`` samples each."""
    return rng.binomial(per, probe_rates(rng, rate, icc, shape, clusters, reps))


@dataclass(frozen=True)
class CoverageResult:
    """One-sided coverage of the gate's upper bound at one grid point."""

    clusters: int
    per: int
    rate: float
    icc: float
    shape: str
    reps: int
    coverage: float
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return asdict(self)


def gate_coverage(rng: np.random.Generator, rate: float, icc: float, shape: str, clusters: int,
                  per: int, reps: int, alpha: float = 0.05, max_icc: float = 0.5,
                  ) -> CoverageResult:
    """P(upper bound >= true mean rate), by the dual p-value: the bound at tail alpha is
    below the true rate exactly when the p-value of "rate >= true rate" is < alpha."""
    counts = draw_counts(rng, rate, icc, shape, clusters, per, reps)
    n = np.full(clusters, per)
    if rate <= 0.0:
        return CoverageResult(clusters, per, rate, icc, shape, reps, 1.0, alpha)
    covered = sum(population_pvalue_below(row, n, rate, max_icc=max_icc) >= alpha
                  for row in counts)
    return CoverageResult(clusters, per, rate, icc, shape, reps, covered / reps, alpha)


def familywise_false_below(rng: np.random.Generator, groups: int, rate: float, icc: float,
                           shape: str, clusters: int, per: int, reps: int,
                           confidence_level: float = 0.95) -> float:
    """Share of runs in which any of ``groups`` categories, each exactly at its max rate,
    is called "below" by `gate_groups` (Holm across the groups)."""
    n = [per] * clusters
    wrong = 0
    for _ in range(reps):
        inputs = [GateInput("category", f"c{g}", draw_counts(rng, rate, icc, shape, clusters,
                                                             per, 1)[0].tolist(), n, rate)
                  for g in range(groups)]
        verdicts = gate_groups(inputs, confidence_level, hints=False)
        wrong += any(v.verdict == "below" for v in verdicts)
    return wrong / reps


def power_below(rng: np.random.Generator, true_rate: float, max_rate: float, icc: float,
                shape: str, clusters: int, per: int, reps: int,
                confidence_level: float = 0.95, max_icc: float = 0.5) -> float:
    """Share of runs `gate_groups` calls "below" for one group (probes x samples)."""
    n = [per] * clusters
    hits = 0
    for row in draw_counts(rng, true_rate, icc, shape, clusters, per, reps):
        (v,) = gate_groups([GateInput("overall", "overall", row.tolist(), n, max_rate)],
                           confidence_level, max_icc=max_icc, hints=False)
        hits += v.verdict == "below"
    return hits / reps


def efficiency_ratio(rng: np.random.Generator, rate: float, clusters: int, per: int, reps: int,
                     alpha: float = 0.05, max_icc: float = 0.5) -> tuple[float, float]:
    """(mean gate upper bound / mean exact pooled bound, mean active probes) at ICC 0."""
    counts = draw_counts(rng, rate, 0.0, "beta", clusters, per, reps)
    n = np.full(clusters, per)
    gate = [population_upper_bound(row, n, alpha, max_icc=max_icc).high for row in counts]
    exact = [fixed_set_upper_bound(int(row.sum()), clusters * per, alpha) for row in counts]
    return float(np.mean(gate) / np.mean(exact)), float(np.mean((counts > 0).sum(axis=1)))


def hint_settles(rng: np.random.Generator, rate: float, max_rate: float, icc: float, shape: str,
                 clusters: int, per: int, reps: int, alpha: float = 0.05,
                 max_icc: float = 0.5) -> tuple[float, int]:
    """Of the inconclusive runs, the share that the printed hint settles.

    Each inconclusive run gets its hint ("more samples" per probe or "more probes"); the
    extra samples are drawn from the same truth (the same probes' rates for more samples,
    new probes for more probes) and the gate is applied again to all the data. Returns the
    share settled (below or above) and the number of inconclusive runs tried.
    """
    settled = tried = 0
    for _ in range(reps):
        p = probe_rates(rng, rate, icc, shape, clusters, 1)[0]
        n = np.full(clusters, per)
        k = rng.binomial(n, p)
        if population_pvalue_below(k, n, max_rate, max_icc=max_icc) < alpha:
            continue
        if k.sum() / n.sum() > max_rate:
            continue  # the "above" side is the fixed-suite test; not what this measures
        h = settle_hint(k, n, max_rate, alpha, population=True, max_icc=max_icc)
        if h.kind is None or h.n is None:
            continue
        tried += 1
        if h.kind == "more samples":
            k2 = k + rng.binomial(h.n, p)
            n2 = n + h.n
        else:
            p_new = probe_rates(rng, rate, icc, shape, h.n, 1)[0]
            k2 = np.concatenate([k, rng.binomial(per, p_new)])
            n2 = np.full(k2.size, per)
        settled += population_pvalue_below(k2, n2, max_rate, max_icc=max_icc) < alpha
    return (settled / tried if tried else float("nan")), tried


def request_coverage(rng: np.random.Generator, rates: Sequence[float], requests: int,
                     choices: int, icc: float, reps: int, alpha: float = 0.05,
                     ) -> tuple[float, float, float]:
    """The "this suite" bound when the choices of one request share their rate.

    One cell per entry of ``rates`` (the fixed-set rate is their mean), ``requests``
    requests of ``choices`` each; a request's rate is Beta with the cell's mean and
    intraclass correlation ``icc`` (0: independent choices). Through `gate_groups` as the
    run analysis calls it (fixed-set estimand, the request dependence of
    `request_dependence`). Returns (coverage clustered on the request, coverage taking the
    choices as independent, median design effect).
    """
    p = np.asarray(rates, dtype=float)
    truth = float(p.mean())
    hit = hit_naive = 0
    deffs: list[float] = []
    for _ in range(reps):
        if icc > 0:
            a, b = p * (1 - icc) / icc, (1 - p) * (1 - icc) / icc
            q_r = rng.beta(np.repeat(a, requests), np.repeat(b, requests))
        else:
            q_r = np.repeat(p, requests)
        h = rng.binomial(choices, q_r).reshape(p.size, requests)
        cells = [[(int(x), choices) for x in row] for row in h]
        dep = request_dependence(cells)
        deffs.append(dep.design_effect)
        k, n = h.sum(axis=1).tolist(), [requests * choices] * p.size
        for dependence in (dep, INDEPENDENT):
            (v,) = gate_groups([GateInput("overall", "overall", k, n, 0.5, estimand="fixed-set",
                                          request_dependence=dependence)],
                               1 - alpha, cluster=False, hints=False)
            if dependence is dep:
                hit += v.fixed_set_high >= truth
            else:
                hit_naive += v.fixed_set_high >= truth
    return hit / reps, hit_naive / reps, float(np.median(deffs))
