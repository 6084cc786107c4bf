"""Print the false-alarm and power grid of the user-report spike alarm (docs/watch.md).

Usage: .venv/bin/python bench/report_spike_grid.py [--reps 1500] [--power-reps 400]
       [--seed 11] [--days 30] [--baseline-days 14]

Each simulated watch ingests `--baseline-days` days and then one day per night of a
`--days`-night period, through `harness.watch.production.evaluate_signals` (the code
`harness watch status` runs, skip rules included), with the default budget: drift_alpha
0.05, half of it (0.025) for the report test, spent over the nightly looks.
"""

from __future__ import annotations

import argparse

import numpy as np

from harness.watch._records import WatchDefinition
from harness.watch.production import TESTED_SIGNALS
from harness.watch.simulate import REPORT_SPIKE_GRID, report_alarm_share


def definition(days: int, baseline_days: int) -> WatchDefinition:
    """A watch with the default budgets (confidence 0.95, drift_alpha 1 - confidence)."""
    return WatchDefinition(name="grid", suite="-", target="sim", max_rate=0.02, days=days,
                           signal_baseline_days=baseline_days)


def main() -> None:
    """Print the grid as a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=1500)
    ap.add_argument("--power-reps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--baseline-days", type=int, default=14)
    args = ap.parse_args()
    d = definition(args.days, args.baseline_days)
    level = d.drift_budget / len(TESTED_SIGNALS)
    print(f"report-test budget {level:g} over {args.days} nightly looks; {args.reps} watches "
          f"per row (false alarms), {args.power_reps} with a 4x spike from night "
          f"{args.days // 2 + 1} (power); seed {args.seed}\n")
    print("| dispersion phi | reports a day | false-alarm share (s.e.) | power, 4x spike |")
    print("|---|---|---|---|")
    for phi, per_day in REPORT_SPIKE_GRID:
        rng = np.random.default_rng([args.seed, int(phi * 10), int(per_day * 10)])
        fa = report_alarm_share(d, rng, phi=phi, reports_per_day=per_day, reps=args.reps)
        power = report_alarm_share(d, rng, phi=phi, reports_per_day=per_day,
                                   reps=args.power_reps, spike=4.0)
        se = float(np.sqrt(max(fa, 1e-12) * (1 - fa) / args.reps))
        # Above the level by more than Monte Carlo error: the rule does not hold there.
        flag = " **over the level**" if fa - 2 * se > level else ""
        print(f"| {phi:g} | {per_day:g} | {fa:.3f} ({se:.3f}){flag} | {power:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
