"""Print the gate tables of docs/statistics.md §9 from the real gate (Markdown).

Usage: .venv/bin/python bench/gate_tables.py [--section coverage|fwer|efficiency|hint|plan|
                                              requests|all]
                                             [--reps 400] [--seed 20261201] [--fast]

Every number comes from `harness.gate_sim`, which calls the functions `harness run` calls
(`harness.gating.gate_groups` and the p-values it decides with, exactly dual to the printed
bounds). `--fast` is the subset tests/test_gate_sim.py runs in `make test`; the full grid is
`make test-stats` (marked slow).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from harness.gate_plan import gate_plan
from harness.gate_sim import (
    efficiency_ratio,
    familywise_false_below,
    gate_coverage,
    hint_settles,
    power_below,
    request_coverage,
)

RATES = (0.001, 0.01, 0.05, 0.2)
ICCS = (0.0, 0.1, 0.3, 0.5)
DESIGNS = ((1, 1000), (5, 20), (30, 10), (30, 1000), (100, 1), (100, 100), (500, 10))
FAST_DESIGNS = ((1, 1000), (30, 10), (100, 100))
FAST_RATES = (0.01, 0.2)
FAST_ICCS = (0.0, 0.5)


def coverage_grid(rng: np.random.Generator, reps: int, fast: bool) -> list[tuple[object, ...]]:
    """(probes, samples, rate, icc, shape, coverage %) over the grid."""
    rows = []
    designs = FAST_DESIGNS if fast else DESIGNS
    for (c, m), rate, icc in itertools.product(designs, FAST_RATES if fast else RATES,
                                               FAST_ICCS if fast else ICCS):
        for shape in ("beta",) if icc == 0 else ("beta", "bursty"):
            r = gate_coverage(rng, rate, icc, shape, c, m, reps)
            rows.append((c, m, rate, icc, shape, 100 * r.coverage))
    return rows


def coverage_table(rows: list[tuple[object, ...]], reps: int) -> str:
    """Markdown for `coverage_grid` rows."""
    out = [f"| probes x samples | rate | icc | probe rates | one-sided coverage % ({reps} runs) |",
           "|---|---|---|---|---|"]
    for c, m, rate, icc, shape, cov in rows:
        mark = " **<94.5**" if float(cov) < 94.5 else ""  # type: ignore[arg-type]
        out.append(f"| {c} x {m} | {rate:g} | {icc:g} | {shape} | {cov:.1f}{mark} |")
    return "\n".join(out)


FWER_CASES = ((8, 0.02, 0.1, "beta", 50, 100), (8, 0.02, 0.3, "bursty", 50, 100),
              (3, 0.05, 0.0, "beta", 30, 10), (8, 0.01, 0.5, "beta", 200, 10),
              (8, 0.2, 0.0, "beta", 100, 10), (8, 0.1, 0.1, "beta", 300, 10))
"""The last two are the hard cases: many probes, harm spread over most of them, where the
bound is closest to nominal (the CLT over probes decides)."""


def fwer_table(rng: np.random.Generator, reps: int, fast: bool,
               cases: tuple[tuple[int, float, float, str, int, int], ...] | None = None) -> str:
    """Family-wise false "below" with every category exactly at its max rate."""
    out = ["| categories | probes x samples | rate = max | icc | probe rates | "
           f"any false below % ({reps} runs) |", "|---|---|---|---|---|---|"]
    for g, rate, icc, shape, c, m in cases or (FWER_CASES[:2] if fast else FWER_CASES):
        f = familywise_false_below(rng, g, rate, icc, shape, c, m, reps)
        out.append(f"| {g} | {c} x {m} | {rate:g} | {icc:g} | {shape} | {100 * f:.1f} |")
    return "\n".join(out)


EFF_CASES = ((200, 50, 0.0002), (200, 50, 0.002), (200, 50, 0.01), (50, 100, 0.02),
             (100, 100, 0.01), (30, 10, 0.05), (500, 10, 0.005), (10, 100, 0.05))


def efficiency_table(rng: np.random.Generator, reps: int, fast: bool) -> str:
    """Mean gate bound over the exact pooled (this-suite) bound at ICC 0."""
    out = ["| probes x samples | rate | mean probes with harm | mean bound / exact pooled bound |"
           " target |", "|---|---|---|---|---|"]
    for c, m, rate in EFF_CASES[:3] if fast else EFF_CASES:
        ratio, active = efficiency_ratio(rng, rate, c, m, max(20, reps // 10))
        target = "1.25" if active > 10 else "2"
        out.append(f"| {c} x {m} | {rate:g} | {active:.1f} | {ratio:.2f} | {target} |")
    return "\n".join(out)


HINT_CASES = ((0.02, 0.05, 0.1, "beta", 30, 10), (0.0, 0.05, 0.0, "beta", 20, 10),
              (0.005, 0.02, 0.0, "beta", 60, 30), (0.01, 0.05, 0.3, "beta", 40, 20))


def hint_table(rng: np.random.Generator, reps: int, fast: bool) -> str:
    """Share of inconclusive runs that the printed hint settles."""
    out = ["| true rate | max | icc | probes x samples | inconclusive runs | settled by the "
           "hint % |", "|---|---|---|---|---|---|"]
    for rate, mx, icc, shape, c, m in HINT_CASES[:2] if fast else HINT_CASES:
        share, tried = hint_settles(rng, rate, mx, icc, shape, c, m, max(20, reps // 4))
        out.append(f"| {rate:g} | {mx:g} | {icc:g} | {c} x {m} | {tried} | {100 * share:.1f} |")
    return "\n".join(out)


PLAN_CASES = ((0.05, 0.0, 0.0, 10), (0.05, 0.01, 0.1, 10), (0.02, 0.005, 0.0, 30),
              (0.01, 0.0, 0.0, 10))


def plan_table(rng: np.random.Generator, reps: int, fast: bool) -> str:
    """`harness plan` (gate_plan) promises vs power through the gate on fresh simulations."""
    out = ["| max | expected | icc assumed | samples per probe | probes planned | promised "
           f"power % | reached % ({reps} fresh runs) |", "|---|---|---|---|---|---|---|"]
    for mx, p1, icc, m in PLAN_CASES[:1] if fast else PLAN_CASES:
        plan = gate_plan(mx, p1, icc=icc, samples_per_probe=m, power=0.8, seed=7)
        got = power_below(rng, p1, mx, icc, "beta", plan.probes, m, reps)
        out.append(f"| {mx:g} | {p1:g} | {icc:g} | {m} | {plan.probes} | "
                   f"{100 * plan.achieved_power:.1f} | {100 * got:.1f} |")
    return "\n".join(out)


REQUEST_DESIGNS = ((tuple(np.linspace(0.02, 0.08, 8)), 6, 10), ((0.01, 0.05, 0.09), 20, 10),
                   ((0.005,) * 30, 2, 50))
REQUEST_ICCS = (0.0, 0.1, 0.4, 0.8)


def request_table(rng: np.random.Generator, reps: int, fast: bool) -> str:
    """The "this suite" bound when the choices of one request are dependent (§4)."""
    out = ["| cells x requests x choices | mean rate | within-request icc | clustered on the "
           "request % | choices as independent % | median design effect |",
           "|---|---|---|---|---|---|"]
    for rates, r, m in REQUEST_DESIGNS[:1] if fast else REQUEST_DESIGNS:
        for icc in (0.0, 0.4) if fast else REQUEST_ICCS:
            cov, naive, deff = request_coverage(rng, rates, r, m, icc, reps)
            out.append(f"| {len(rates)} x {r} x {m} | {float(np.mean(rates)):g} | {icc:g} | "
                       f"{100 * cov:.1f} | {100 * naive:.1f} | {deff:.2f} |")
    return "\n".join(out)


def main() -> None:
    """Print the requested tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", default="all",
                    choices=["coverage", "fwer", "efficiency", "hint", "plan", "requests",
                             "all"])
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--fast", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    s = args.section
    if s in ("coverage", "all"):
        print("#### Gate upper bound, one-sided 95% coverage\n")
        print(coverage_table(coverage_grid(rng, args.reps, args.fast), args.reps), "\n")
    if s in ("fwer", "all"):
        print("#### Family-wise false \"below\" (Holm), nominal 5%\n")
        print(fwer_table(rng, args.reps, args.fast), "\n")
    if s in ("efficiency", "all"):
        print("#### Efficiency at ICC 0\n")
        print(efficiency_table(rng, args.reps, args.fast), "\n")
    if s in ("hint", "all"):
        print("#### Hints: share of inconclusive runs the hint settles\n")
        print(hint_table(rng, args.reps, args.fast), "\n")
    if s in ("plan", "all"):
        print("#### `harness plan`: promised vs reached power\n")
        print(plan_table(rng, args.reps, args.fast), "\n")
    if s in ("requests", "all"):
        print("#### \"This suite\" bound with dependent choices of one request, one-sided "
              f"95% coverage, {args.reps} runs per row\n")
        print(request_table(rng, args.reps, args.fast), "\n")


if __name__ == "__main__":
    main()
