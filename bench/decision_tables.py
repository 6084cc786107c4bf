"""Regenerate the sequential, watch and compare tables of docs/statistics.md and docs/watch.md.

Every number comes from simulation through the functions the CLI calls: `evaluate_watch`
(``harness watch status``, via `harness.watch.simulate`), `compare_group`
(``harness compare``) and `harness.analysis.sequential_decision` (``harness run
--sequential``). The fixed-sample gate tables are bench/gate_tables.py.

    .venv/bin/python bench/decision_tables.py [--section watch|compare|sequential|all]
        [--reps N] [--seed S]

Prints Markdown tables to stdout.
"""

from __future__ import annotations

import argparse
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
                          fixed_count: bool = False) -> float:
    """Share of simulated comparisons that call a candidate worse by exactly ``margin``
    "no worse than margin" (one-sided nominal 5%: `compare_group` at a 90% interval).

    Each family breaks with probability ``breaking`` (or exactly round(breaking x families),
    at least one, with ``fixed_count``); a broken family's rate rises by
    ``margin / breaking`` (so the mean rise is the margin). Baseline family rates are 0 or
    Beta with mean ``baseline_rate`` and intraclass correlation 0.2.
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
        g = compare_group("overall", _cells(kb, samples), _cells(kc, samples), margin, 0.90)
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
    return [*out, ""]


SECTIONS = {"watch": watch_tables, "compare": compare_tables}


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
