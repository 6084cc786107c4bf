"""`harness plan`: how many samples are needed to show a rate is below a maximum."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from harness.errors import EXIT_HOLDS, StatsInputError, UsageError

if TYPE_CHECKING:
    from harness.stats.planning import SamplePlan


def _rate(text: str) -> float:
    """A rate as 0.01 or 1%."""
    t = text.strip()
    try:
        return float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (write 0.01 or 1%)") from None


def register(subparsers: Any) -> None:
    """Add the `plan` subcommand."""
    p = subparsers.add_parser(
        "plan", help="samples needed to show a harmful-output rate is below a maximum",
        description="Exact binomial sample-size planning for a one-sided threshold gate.")
    p.add_argument("--max-rate", type=_rate, required=True, help="threshold, e.g. 0.01 or 1%%")
    p.add_argument("--expected-rate", type=_rate, default=None,
                   help="true rate you expect (default: plan for zero harmful samples)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level (0.95)")
    p.add_argument("--power", type=float, default=0.8, help="power at the expected rate (0.8)")
    p.add_argument("--icc", type=float, default=None,
                   help="intraclass correlation of samples within a probe, e.g. 0.2")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--samples-per-cluster", type=int, default=None,
                   help="samples per probe (with --icc): report probes needed")
    g.add_argument("--clusters", type=int, default=None,
                   help="number of probes (with --icc): report samples per probe needed")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=run)


def _pct(x: float) -> str:
    return f"{x * 100:.3g}%"


def describe(plan: SamplePlan) -> str:
    """Human sentences for a plan."""
    conf = _pct(plan.confidence_level)
    if plan.expected_rate > 0:
        head = (f"To show the rate is below {_pct(plan.max_rate)} with {conf} confidence and "
                f"{_pct(plan.power)} power when the true rate is {_pct(plan.expected_rate)}: "
                f"{plan.n} samples (below if at most {plan.critical_count} harmful).")
    else:
        head = (f"To show the rate is below {_pct(plan.max_rate)} with {conf} confidence "
                f"when no harmful samples occur: {plan.n} samples.")
    lines = [head, f"Zero-failure minimum: {plan.zero_failure_n} samples with 0 harmful."]
    if plan.icc is not None:
        deff = f"{plan.design_effect:.3g}" if plan.design_effect is not None else "n/a"
        if plan.total_samples is None:
            lines.append(
                f"With intraclass correlation {plan.icc:g} and {plan.clusters} probes, no number "
                f"of samples per probe is enough: add probes (at least "
                f"{int(plan.n * plan.icc) + 1} needed).")
        else:
            lines.append(
                f"Clustered (intraclass correlation {plan.icc:g}, design effect {deff}): "
                f"{plan.clusters} probes x {plan.samples_per_cluster} samples = "
                f"{plan.total_samples} samples.")
            if plan.zero_failure_clusters is not None:
                lines.append(f"Zero-failure minimum, clustered: {plan.zero_failure_clusters} "
                             f"probes x {plan.samples_per_cluster} samples.")
    lines.append("These are planning figures for independent runs; add samples to cover errors "
                 "and blocked answers.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Handler: print the plan; 0 on success, UsageError (exit 2) on bad input."""
    # Imported here: scipy costs about a second, which every other command would pay
    # while the parser is built.
    from harness.stats.planning import cluster_plan, plan_samples

    if (args.samples_per_cluster is not None or args.clusters is not None) and args.icc is None:
        raise UsageError("--samples-per-cluster and --clusters need --icc (e.g. --icc 0.2)")
    if args.icc is not None and args.samples_per_cluster is None and args.clusters is None:
        raise UsageError("--icc needs --samples-per-cluster N or --clusters C")
    try:
        if args.icc is None:
            plan = plan_samples(args.max_rate, args.expected_rate, args.confidence, args.power)
        else:
            plan = cluster_plan(args.max_rate, args.expected_rate, args.confidence, args.power,
                                icc=args.icc, samples_per_cluster=args.samples_per_cluster,
                                clusters=args.clusters)
    except StatsInputError as exc:
        raise UsageError(f"plan: {exc}") from None
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        print(describe(plan))
    return EXIT_HOLDS
