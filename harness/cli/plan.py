"""`harness plan`: how many samples are needed to show a rate is below a maximum, and
(`harness plan SUITE`) how many requests and tokens a suite's plan needs."""

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
        "plan", help="samples needed to show a rate is below a maximum; requests and tokens "
                     "of a suite",
        description="Exact binomial sample-size planning for a one-sided threshold gate "
                    "(--max-rate); with SUITE, the requests and (estimated) tokens and cost "
                    "its plan needs, without sending anything.")
    p.add_argument("suite", nargs="?", default=None, metavar="SUITE",
                   help="suite file: print the requests, tokens and cost its plan needs")
    p.add_argument("--max-rate", type=_rate, default=None, help="threshold, e.g. 0.01 or 1%%")
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
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="with SUITE: samples per cell (default: the suite's)")
    p.add_argument("--no-n", action="store_true",
                   help="with SUITE: one sample a request (endpoints without `n`, e.g. "
                        "llama.cpp); default: up to 50 a request")
    p.add_argument("--price-per-1k-in", type=float, default=None, metavar="PRICE",
                   help="with SUITE: price of 1,000 prompt tokens (or the suite's price:)")
    p.add_argument("--price-per-1k-out", type=float, default=None, metavar="PRICE",
                   help="with SUITE: price of 1,000 completion tokens")
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


def request_plan(args: argparse.Namespace) -> dict[str, Any]:
    """The requests, tokens and cost of SUITE's plan (nothing is sent)."""
    from harness.plan import MAX_BATCH_N, estimate_requests, plan_cells
    from harness.settings import Overrides, apply_overrides, env_overrides
    from harness.suites import load_suite

    if args.samples is not None and args.samples < 1:
        raise UsageError(f"--samples must be at least 1, got {args.samples}")
    suite = apply_overrides(load_suite(args.suite), env_overrides(), Overrides(
        samples=args.samples, price_per_1k_in=args.price_per_1k_in,
        price_per_1k_out=args.price_per_1k_out))
    estimate = estimate_requests(plan_cells(suite), suite.samples, suite.max_tokens,
                                 1 if args.no_n else MAX_BATCH_N)
    out: dict[str, Any] = {"suite": suite.name, **estimate.to_dict(),
                           "max_tokens": suite.max_tokens,
                           "tokens_in_method": "characters / 4, once per request"}
    if suite.price is not None:
        cost_in, cost_out = suite.price.cost(estimate.tokens_in, estimate.max_tokens_out)
        out["cost"] = {"estimated": True, "currency": suite.price.currency,
                       "per_1k_in": suite.price.per_1k_in,
                       "per_1k_out": suite.price.per_1k_out, "in": round(cost_in, 6),
                       "max_out": round(cost_out, 6), "max_total": round(cost_in + cost_out, 6)}
    return out


def describe_requests(d: dict[str, Any]) -> str:
    """Human sentences for a suite's request plan."""
    per = ("one sample a request" if d["n_per_request"] == 1 else
           f"up to {d['n_per_request']} samples a request")
    lines = [f"Suite {d['suite']}: {d['cells']:,} cells, {d['samples']:,} samples in "
             f"{d['requests']:,} requests ({per}).",
             f"Tokens: about {d['tokens_in_estimated']:,} prompt tokens (estimated at 4 "
             f"characters a token), at most {d['max_tokens_out']:,} completion tokens "
             f"({d['samples']:,} x max_tokens {d['max_tokens']:,})."]
    cost = d.get("cost")
    if cost:
        lines.append(f"Estimated cost: at most {cost['max_total']:.4g} {cost['currency']} "
                     f"(prompt about {cost['in']:.4g}, completions at most "
                     f"{cost['max_out']:.4g}; {cost['per_1k_in']:g} in / "
                     f"{cost['per_1k_out']:g} out per 1,000 tokens). With openai-batch, "
                     "give the batch price (50% of the synchronous one at OpenAI).")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Handler: print the plan; 0 on success, UsageError (exit 2) on bad input."""
    if args.suite is None and args.max_rate is None:
        raise UsageError("give --max-rate RATE (samples needed for a gate) or a SUITE "
                         "(requests and tokens of its plan), e.g. harness plan --max-rate 1%")
    if args.suite is not None and args.max_rate is None:
        d = request_plan(args)
        print(json.dumps(d, indent=2) if args.json else describe_requests(d))
        return EXIT_HOLDS
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
    requests = request_plan(args) if args.suite is not None else None
    if args.json:
        doc = plan.to_dict() if requests is None else {"plan": plan.to_dict(),
                                                       "requests": requests}
        print(json.dumps(doc, indent=2))
    else:
        print(describe(plan))
        if requests is not None:
            print(describe_requests(requests))
    return EXIT_HOLDS
