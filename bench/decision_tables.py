"""Regenerate the sequential, watch and compare tables of docs/statistics.md and docs/watch.md.

Every number comes from simulation through the functions the CLI calls: `evaluate_watch`
(``harness watch status``, via `harness.watch.simulate`), `compare_group`
(``harness compare``) and `harness.analysis.sequential_decision` (``harness run
--sequential``). The fixed-sample gate tables are bench/gate_tables.py.

    .venv/bin/python bench/decision_tables.py [--section watch|compare|compare-fixed-set|
                                                  sequential|all]
        [--reps N] [--seed S]

Prints Markdown tables to stdout.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import date

import numpy as np

from harness.compare import compare_group
from harness.engine import CellCounts
from harness.watch.model import WatchDefinition
from harness.watch.simulate import simulate_watch, step_rates

MAX = 0.05


def watch_tables(reps: int, seed: int) -> list[str]:
    """Verified / flagged shares for the three watch scenarios of issue 12."""
    d = WatchDefinition(name="w", suite="s", target="sim", max_rate=MAX, days=60,
                        start=date(2026, 1, 1))
    scenarios = {
        "stationary at the max (5%)": [MAX] * 60,
        "step 3% -> 6% at night 20": step_rates(60, 0.6 * MAX, 1.2 * MAX, 20),
        "stationary at half the max (2.5%)": [0.5 * MAX] * 60,
    }
    out = [f"#### Watch, 60 nightly looks, max rate 5%, 95% ({reps} watches per row, "
           f"seed {seed})", "",
           "| scenario | samples a night | panel | ends verified | any alarm | "
           "flagged on nights 20-29 |",
           "|---|---|---|---|---|---|"]
    rng = np.random.default_rng(seed)
    for name, rates in scenarios.items():
        for n in (100, 300, 1000, 3000):
            for spread in (0.0, 0.9):
                if spread and n != 1000:
                    continue
                ver = alarm = flag = 0
                for _ in range(reps):
                    st = simulate_watch(d, rates, n, rng, panel_spread=spread)
                    ver += st.status == "verified"
                    alarm += bool(st.alarms)
                    flag += any(19 <= a.run_index <= 28 for a in st.alarms)
                panel = "binomial" if not spread else "20 prompts, rates x0.1-1.9"
                out.append(f"| {name} | {n:,} | {panel} | {100 * ver / reps:.1f}% | "
                           f"{100 * alarm / reps:.1f}% | {100 * flag / reps:.1f}% |")
                print(out[-1], file=sys.stderr, flush=True)
    return [*out, ""]


def _cells(k: np.ndarray, m: int) -> list[CellCounts]:
    return [CellCounts(probe_id=f"p{j}", family=f"p{j}", parent_id=None, mutators="",
                       category="c", severity="high", context="bare", temperature=0.7, n=m,
                       n_harmful=int(k[j]), n_safe=m - int(k[j])) for j in range(k.size)]


def bursty_false_no_worse(families: int, samples: int, breaking: float, margin: float,
                          baseline_rate: float, reps: int, rng: np.random.Generator, *,
                          fixed_count: bool = False, estimand: str = "population") -> float:
    """Share of simulated comparisons that call a candidate worse by exactly ``margin``
    "no worse than margin" (one-sided nominal 5%: `compare_group` at a 90% interval).

    Each family breaks with probability ``breaking`` (or exactly round(breaking x families),
    at least one, with ``fixed_count``); a broken family's rate rises by
    ``margin / breaking`` (so the mean rise is the margin). Baseline family rates are 0 or
    Beta with mean ``baseline_rate`` and intraclass correlation 0.2. ``estimand="fixed-set"``
    (`harness compare --estimand fixed-set`, this suite's prompts) wants ``fixed_count``: the
    suite's own rates then differ by exactly the margin.
    """
    false = 0
    s = 1.0 / 0.2 - 1.0
    for _ in range(reps):
        pb = (rng.beta(baseline_rate * s, (1 - baseline_rate) * s, size=families)
              if baseline_rate > 0 else np.zeros(families))
        pc = pb.copy()
        if fixed_count:
            count = max(1, round(breaking * families))
            idx = rng.choice(families, count, replace=False)
            pc[idx] = np.minimum(1.0, pc[idx] + margin * families / count)
        else:
            broke = rng.random(families) < breaking
            pc[broke] = np.minimum(1.0, pc[broke] + margin / breaking)
        kb, kc = rng.binomial(samples, pb), rng.binomial(samples, pc)
        g = compare_group("overall", _cells(kb, samples), _cells(kc, samples), margin, 0.90,
                          estimand)
        false += g.verdict == "no-worse-than-margin"
    return false / reps


def compare_tables(reps: int, seed: int) -> list[str]:
    """False "no worse" under bursty regressions exactly at the margin."""
    rng = np.random.default_rng(seed)
    out = [f"#### Compare: false \"no worse\" at the margin, nominal 5% one-sided ({reps} "
           f"comparisons per cell, seed {seed})", "",
           "| families x samples | breaking | margin | baseline | families break at random | "
           "fixed number break |", "|---|---|---|---|---|---|"]
    for fam, m in ((50, 10), (100, 10), (200, 5)):
        for f in (0.02, 0.10):
            for margin in (0.01, 0.02):
                for base in (0.0, 0.02):
                    a = bursty_false_no_worse(fam, m, f, margin, base, reps, rng)
                    b = bursty_false_no_worse(fam, m, f, margin, base, reps, rng,
                                              fixed_count=True)
                    out.append(f"| {fam} x {m} | {f:.0%} | {margin:.0%} | "
                               f"{'0' if not base else '2%, ICC 0.2'} | {100 * a:.1f}% | "
                               f"{100 * b:.1f}% |")
                    print(out[-1], file=sys.stderr, flush=True)
    out += ["", f"#### Compare: \"no worse\" when nothing changed (same family rates, Beta mean "
            f"2% ICC 0.2; {reps} comparisons per cell)", "",
            "| families x samples | margin 2% | margin 5% | margin 10% |", "|---|---|---|---|"]
    for fam, m in ((50, 10), (100, 10), (200, 5), (500, 5)):
        cols = []
        for margin in (0.02, 0.05, 0.10):
            ok = 0
            for _ in range(reps):
                pb = rng.beta(0.02 * 4.0, 0.98 * 4.0, size=fam)
                kb, kc = rng.binomial(m, pb), rng.binomial(m, pb)
                g = compare_group("overall", _cells(kb, m), _cells(kc, m), margin, 0.90)
                ok += g.verdict in ("no-worse-than-margin", "better")
            cols.append(f"{100 * ok / reps:.1f}%")
        out.append(f"| {fam} x {m} | " + " | ".join(cols) + " |")
        print(out[-1], file=sys.stderr, flush=True)
    return [*out, ""]


def fixed_set_tables(reps: int, seed: int) -> list[str]:
    """`compare --estimand fixed-set`: false "no worse" when this suite's own rates differ by
    exactly the margin (docs/statistics.md §5.4)."""
    rng = np.random.default_rng(seed)
    out = [f"#### Compare, this suite's prompts: false \"no worse\" at the margin ({reps} "
           f"comparisons per cell, seed {seed})", "",
           "| prompts x samples | breaking | margin 1%, baseline 0 | margin 1%, baseline 2% | "
           "margin 2%, baseline 0 | margin 2%, baseline 2% |", "|---|---|---|---|---|---|"]
    for fam, m in ((50, 10), (100, 10), (200, 5)):
        for f in (0.02, 0.10):
            row = [bursty_false_no_worse(fam, m, f, margin, base, reps, rng, fixed_count=True,
                                         estimand="fixed-set")
                   for margin in (0.01, 0.02) for base in (0.0, 0.02)]
            out.append(f"| {fam} x {m} | {f:.0%} | "
                       + " | ".join(f"{100 * x:.1f}%" for x in row) + " |")
            print(out[-1], file=sys.stderr, flush=True)
    return [*out, ""]


def probe_rates(rng: np.random.Generator, families: int, mean: float, icc: float,
                bursty: bool = False) -> np.ndarray:
    """Family rates with the given mean: Beta with intraclass correlation ``icc``, or bursty
    (a share ``mean / 0.5`` of families at rate 0.5, the rest 0)."""
    if mean <= 0:
        return np.zeros(families)
    if bursty:
        return np.where(rng.random(families) < mean / 0.5, 0.5, 0.0)
    if icc <= 0:
        return np.full(families, mean)
    s = 1.0 / icc - 1.0
    return rng.beta(mean * s, (1 - mean) * s, size=families)


def sequential_run(rates: np.ndarray, samples: int, max_rate: float,
                   rng: np.random.Generator, confidence_level: float = 0.95
                   ) -> tuple[str, int]:
    """One `run --sequential` of one gated group, rounds as the engine plays them.

    ``samples`` per family is the fixed plan; rounds of ceil(samples / 4) per family, budget
    twice the plan, `sequential_gate` after every round with per-family counts (what
    `harness.analysis.sequential_decision` passes). Returns (verdict, samples used).
    """
    from harness.stats.sequential import sequential_gate

    families = rates.size
    per_round = max(1, -(-samples // 4))
    budget = 2 * families * samples
    planned_looks = max(1, -(-budget // (families * per_round)))
    k = np.zeros(families, dtype=np.int64)
    n = np.zeros(families, dtype=np.int64)
    prev = None
    look = 0
    while True:
        take = min(per_round, (budget - int(n.sum())) // families)
        exhausted = take <= 0
        if not exhausted:
            k += rng.binomial(take, rates)
            n += take
            look += 1
        d = sequential_gate({"g": (int(k.sum()), int(n.sum()))}, {"g": max_rate},
                            confidence_level, planned_samples=families * samples,
                            budget_exhausted=exhausted, previous=prev,
                            clusters_by_group={"g": (k.tolist(), n.tolist())},
                            look=max(look, 1), planned_looks=planned_looks)
        prev = d
        if d.stop or d.verdict == "above":
            return d.verdict, int(n.sum())


def fixed_run(rates: np.ndarray, samples: int, max_rate: float, rng: np.random.Generator,
              confidence_level: float = 0.95) -> str:
    """The fixed-size gate on the same design (families x samples), one-sided at alpha."""
    from harness.gating import GateInput, gate_groups

    k = rng.binomial(samples, rates)
    g = GateInput("overall", "g", k.tolist(), [samples] * rates.size, max_rate)
    return gate_groups([g], confidence_level)[0].verdict


def sequential_tables(reps: int, seed: int) -> list[str]:
    """Sequential: validity under clustering, samples to decision against the fixed plan."""
    rng = np.random.default_rng(seed)
    theta = MAX
    limit = math.log(0.05) / math.log(1 - theta)
    out = [f"#### run --sequential, max rate 5%, 95% ({reps} runs per row, seed {seed})", "",
           "Budget twice the fixed plan, rounds of a quarter of the planned samples per family. "
           f"Information limit ln(alpha)/ln(1 - max) = {limit:.1f} samples.", "",
           "| families x planned samples | truth | wrong below | below | above | above though "
           "this suite's mean <= max | mean samples used / fixed plan | / information limit | "
           "fixed gate below |",
           "|---|---|---|---|---|---|---|---|---|"]
    designs = ((60, 10), (200, 5), (30, 20))
    truths = (("0", 0.0, 0.0, False), ("half the max, ICC 0", 0.5 * theta, 0.0, False),
              ("half the max, ICC 0.1", 0.5 * theta, 0.1, False),
              ("at the max, ICC 0.3", theta, 0.3, False),
              ("at the max, bursty", theta, 0.0, True),
              ("twice the max, ICC 0.1", 2 * theta, 0.1, False))
    for fam, m in designs:
        for name, mean, icc, bursty in truths:
            verdicts: list[str] = []
            used: list[int] = []
            fixed_below = wrong_above = 0
            for _ in range(reps):
                rates = probe_rates(rng, fam, mean, icc, bursty)
                v, u = sequential_run(rates, m, theta, rng)
                wrong_above += v == "above" and float(rates.mean()) <= theta
                verdicts.append(v)
                used.append(u)
                fixed_below += fixed_run(rates, m, theta, rng) == "below"
            below = verdicts.count("below") / reps
            above = verdicts.count("above") / reps
            # "below" is wrong when the population mean is >= max; "above" (a claim about
            # this suite's prompts) when the suite's own mean rate is <= max.
            wrong = below if mean >= theta else 0.0
            plan = fam * m
            out.append(f"| {fam} x {m} | {name} | {100 * wrong:.1f}% | {100 * below:.1f}% | "
                       f"{100 * above:.1f}% | {100 * wrong_above / reps:.1f}% | "
                       f"{np.mean(used) / plan:.2f} | "
                       f"{np.mean(used) / limit:.1f} | {100 * fixed_below / reps:.1f}% |")
            print(out[-1], file=sys.stderr, flush=True)
    return [*out, ""]


SECTIONS = {"watch": watch_tables, "compare": compare_tables, "compare-fixed-set": fixed_set_tables,
            "sequential": sequential_tables}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--section", choices=[*SECTIONS, "all"], default="all")
    p.add_argument("--reps", type=int, default=400)
    p.add_argument("--seed", type=int, default=20261201)
    args = p.parse_args(argv)
    t0 = time.monotonic()
    names = list(SECTIONS) if args.section == "all" else [args.section]
    for name in names:
        print("\n".join(SECTIONS[name](args.reps, args.seed)))
    print(f"<!-- {time.monotonic() - t0:.0f} s -->")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
