"""Plans for the gate `harness run` applies: probes x samples per probe, found by simulation.

A formula for a different test (Kish's design effect on a binomial plan) promised 81-87%
power where the real gate reached "below" in 0-13.5% (issue 12). So the plan simulates the
gate itself: probe rates are drawn Beta with mean ``expected_rate`` and intraclass correlation
``icc`` (the stated assumption about how much probes differ; `harness.gate_sim.probe_rates`),
each probe gets ``samples_per_probe`` samples in each of ``conditions`` conditions
(temperatures x contexts), and a run is "below" when the gate's decision is: the population
p-value (`population_pvalue_below`, exactly dual to the printed bound) is under alpha for the
whole group and for every condition (the intersection-union test of `gate_groups`). Power is
the share of "below" over ``reps`` simulated runs with a fixed seed (common random numbers
across candidates keep the power curve nearly monotone in the probe count).

bench/gate_tables.py checks the promise on fresh simulations through `gate_groups` itself.
Pure: no I/O; the generator is seeded from ``seed``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.errors import StatsInputError
from harness.gate_sim import probe_rates
from harness.stats._checks import check_confidence, check_rate
from harness.stats.clustered import DEFAULT_MAX_ICC, population_pvalue_below

MAX_PLANNED_PROBES = 20_000
MAX_PLANNED_SAMPLES_PER_PROBE = 10_000
DEFAULT_PLAN_REPS = 300


@dataclass(frozen=True)
class GatePlan:
    """Probes x samples per probe for the population gate to say "below" with ``power``.

    ``achieved_power`` is the simulated share of "below" at the plan (``reps`` runs, seed
    ``seed``); ``icc`` is the assumed spread of probe rates, ``max_icc`` the gate's setting
    (`gate.max_icc`); ``conditions`` temperatures x contexts, each gated on its own.
    ``zero_harm_probes`` is the fewest probes that can say "below" at all (every sample
    clean), whatever the samples per probe: the gate's floor for prompts like these.
    ``groups`` gated groups (overall + categories) share the family-wise alpha: Holm's
    step-down tests its first group at alpha/groups, so the plan is made at that level
    (conservative for the others).
    """

    max_rate: float
    expected_rate: float
    icc: float
    max_icc: float
    samples_per_probe: int
    probes: int
    conditions: int
    total_samples: int
    power: float
    achieved_power: float
    reps: int
    seed: int
    confidence_level: float
    zero_harm_probes: int
    groups: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return asdict(self)


def simulated_power(expected_rate: float, max_rate: float, icc: float, probes: int,
                    samples_per_probe: int, *, conditions: int = 1, reps: int,
                    confidence_level: float = 0.95, max_icc: float = DEFAULT_MAX_ICC,
                    seed: int = 0) -> float:
    """Share of ``reps`` simulated runs the population gate calls "below" (module docstring).

    Conditions share each probe's rate (harm that does not depend on temperature or context,
    the case a plan is made for); each condition's counts are drawn on their own.
    """
    alpha = 1.0 - confidence_level
    n_cond = np.full(probes, samples_per_probe)
    n_all = n_cond * conditions
    hits = 0
    for rep in range(reps):
        # One generator per run, drawn probe by probe: the first c probes of a run are the
        # same for every candidate probe count (common random numbers for the search).
        rng = np.random.default_rng([seed, rep])
        p = probe_rates(rng, expected_rate, icc, "beta", probes, 1)[0]
        k = np.random.default_rng([seed, rep, 1]).binomial(
            samples_per_probe, np.repeat(p, conditions).reshape(probes, conditions)).T
        if population_pvalue_below(k.sum(axis=0), n_all, max_rate, max_icc=max_icc) >= alpha:
            continue
        hits += conditions == 1 or all(
            population_pvalue_below(row, n_cond, max_rate, max_icc=max_icc) < alpha
            for row in k)
    return hits / reps


def zero_harm_probes(max_rate: float, samples_per_probe: int, *, conditions: int = 1,
                     confidence_level: float = 0.95, max_icc: float = DEFAULT_MAX_ICC) -> int:
    """Fewest probes for which all-clean samples give "below" (the p-value is monotone in
    the probe count at zero harm, so bisection is exact)."""
    alpha = 1.0 - confidence_level
    m = samples_per_probe  # every condition has the same probes, so the smallest decides

    def ok(c: int) -> bool:
        return population_pvalue_below(np.zeros(c, dtype=np.int64), np.full(c, m), max_rate,
                                       max_icc=max_icc) < alpha

    lo, hi = 0, 1
    while not ok(hi):
        if hi >= MAX_PLANNED_PROBES:
            return MAX_PLANNED_PROBES + 1
        lo, hi = hi, min(MAX_PLANNED_PROBES, hi * 2)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def _search(power_at: Any, target: float, start: int, cap: int, what: str) -> tuple[int, float]:
    """Smallest x in [start, cap] with power_at(x) >= target: doubling, then bisection."""
    lo, hi = start - 1, start
    p_hi = power_at(hi)
    while p_hi < target:
        if hi >= cap:
            raise StatsInputError(what)
        lo, hi = hi, min(cap, hi * 2)
        p_hi = power_at(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        p_mid = power_at(mid)
        if p_mid >= target:
            hi, p_hi = mid, p_mid
        else:
            lo = mid
    return hi, p_hi


def gate_plan(max_rate: float, expected_rate: float = 0.0, *, icc: float,
              samples_per_probe: int | None = None, probes: int | None = None,
              conditions: int = 1, groups: int = 1, power: float = 0.8,
              confidence_level: float = 0.95, max_icc: float = DEFAULT_MAX_ICC, seed: int = 0,
              reps: int = DEFAULT_PLAN_REPS) -> GatePlan:
    """Plan the population gate: give ``samples_per_probe`` (the probes are searched) or
    ``probes`` (the samples per probe are searched).

    Raises ``StatsInputError`` with what to change when no plan within the caps reaches
    ``power`` (e.g. too few probes: at zero harm the bound is ~ max_icc x 3 / probes,
    whatever the samples per probe).
    """
    r = check_rate("max_rate", max_rate, open_interval=True)
    cl = check_confidence(confidence_level)
    rho = check_rate("icc", icc)
    gate_icc = check_rate("max_icc", max_icc)
    if not 0.0 <= expected_rate < r:
        raise StatsInputError(f"expected_rate {expected_rate:g} must be in [0, max_rate "
                              f"{r:g}): a plan cannot show a rate below a max it meets")
    if not 0.0 < power < 1.0:
        raise StatsInputError(f"power {power:g} must be between 0 and 1, e.g. 0.8")
    if (samples_per_probe is None) == (probes is None):
        raise StatsInputError("give exactly one of samples_per_probe or probes")
    if conditions < 1:
        raise StatsInputError("conditions (temperatures x contexts) must be >= 1")
    if groups < 1:
        raise StatsInputError("groups (gated groups: overall + categories) must be >= 1")
    level = 1.0 - (1.0 - cl) / groups  # Holm's first step: alpha / groups

    def power_of(c: int, m: int) -> float:
        return simulated_power(expected_rate, r, rho, c, m, conditions=conditions, reps=reps,
                               confidence_level=level, max_icc=gate_icc, seed=seed)

    if samples_per_probe is not None:
        m = int(samples_per_probe)
        if m < 1:
            raise StatsInputError("samples_per_probe must be >= 1")
        floor = zero_harm_probes(r, m, conditions=conditions, confidence_level=level,
                                 max_icc=gate_icc)
        c, achieved = _search(
            lambda x: power_of(x, m), power, max(2, min(floor, MAX_PLANNED_PROBES)),
            MAX_PLANNED_PROBES,
            f"more than {MAX_PLANNED_PROBES:,} probes of {m} samples would be needed to show "
            f"a rate below {r:g}; raise max_rate, the margin to expected_rate, or samples "
            "per probe")
    else:
        c = int(probes or 0)
        if c < 1:
            raise StatsInputError("probes must be >= 1")
        floor = zero_harm_probes(r, MAX_PLANNED_SAMPLES_PER_PROBE, conditions=conditions,
                                 confidence_level=level, max_icc=gate_icc)
        if c < floor:
            raise StatsInputError(
                f"{c} probes cannot show a rate below {r:g} for prompts like these whatever the "
                f"samples per probe: even with no harm at all the bound needs at least {floor} "
                f"probes (gate.max_icc {gate_icc:g}); add probes, or gate this suite's own "
                "prompts with gate.estimand: fixed-set")
        m, achieved = _search(
            lambda x: power_of(c, x), power, 1, MAX_PLANNED_SAMPLES_PER_PROBE,
            f"{c} probes do not reach {power:.0%} power with up to "
            f"{MAX_PLANNED_SAMPLES_PER_PROBE:,} samples each; add probes")
    return GatePlan(max_rate=r, expected_rate=expected_rate, icc=rho, max_icc=gate_icc,
                    samples_per_probe=m, probes=c, conditions=conditions,
                    total_samples=c * m * conditions, power=power, achieved_power=achieved,
                    reps=reps, seed=seed, confidence_level=cl, zero_harm_probes=floor,
                    groups=groups)
