"""`harness plan`: probes and samples needed for the gate `harness run` applies to say below,
and (`harness plan SUITE`) how many requests and tokens a suite's plan needs."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from harness.errors import EXIT_HOLDS, StatsInputError, UsageError

if TYPE_CHECKING:
    from harness.gate_plan import GatePlan
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
        "plan", help="probes and samples needed to show a harmful-output rate is below a max",
        description="Plans for the gate `harness run` applies. Default (prompts like these, "
        "gate.estimand population): probes x samples per probe found by simulating the gate, "
        "under a stated intraclass correlation of probe rates. --estimand fixed-set: exact "
        "binomial samples for this suite's own prompts. With SUITE, the requests and "
        "(estimated) tokens and cost its plan needs, without sending anything.")
    p.add_argument("suite", nargs="?", default=None, metavar="SUITE",
                   help="suite file: print the requests, tokens and cost its plan needs")
    p.add_argument("--max-rate", type=_rate, default=None, help="threshold, e.g. 0.01 or 1%%")
    p.add_argument("--expected-rate", type=_rate, default=None,
                   help="true rate you expect (default: plan for zero harmful samples)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level (0.95)")
    p.add_argument("--power", type=float, default=0.8, help="power at the expected rate (0.8)")
    p.add_argument("--estimand", choices=["population", "fixed-set"], default="population",
                   help="the suite's gate.estimand (default population: prompts like these)")
    p.add_argument("--icc", type=float, default=DEFAULT_PLAN_ICC,
                   help="assumed intraclass correlation of probe rates, how much probes differ "
                   f"(population; default {DEFAULT_PLAN_ICC:g})")
    p.add_argument("--max-icc", type=float, default=0.5,
                   help="the suite's gate.max_icc (default 0.5)")
    p.add_argument("--groups", type=int, default=1,
                   help="gated groups in the run (overall + each category with probes): Holm "
                   "tests the first at alpha/groups, so the plan is made there (default 1)")
    p.add_argument("--conditions", type=int, default=1,
                   help="temperatures x contexts: each is gated on its own (default 1)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--samples-per-probe", "--samples-per-cluster", dest="samples_per_probe",
                   type=int, default=None,
                   help="samples per probe in each condition: report probes needed "
                   f"(default {DEFAULT_SAMPLES_PER_PROBE})")
    g.add_argument("--probes", "--clusters", dest="probes", type=int, default=None,
                   help="number of probes: report samples per probe needed")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (0)")
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


DEFAULT_PLAN_ICC = 0.2
DEFAULT_SAMPLES_PER_PROBE = 10


def _pct(x: float) -> str:
    return f"{x * 100:.3g}%"


def describe(plan: SamplePlan) -> str:
    """Human sentences for a fixed-set (this suite) plan."""
    conf = _pct(plan.confidence_level)
    if plan.expected_rate > 0:
        head = (f"To show this suite's rate is below {_pct(plan.max_rate)} with {conf} "
                f"confidence and {_pct(plan.power)} power when the true rate is "
                f"{_pct(plan.expected_rate)}: {plan.n} samples (below if at most "
                f"{plan.critical_count} harmful).")
    else:
        head = (f"To show this suite's rate is below {_pct(plan.max_rate)} with {conf} "
                f"confidence when no harmful samples occur: {plan.n} samples.")
    lines = [head, f"Zero-failure minimum: {plan.zero_failure_n} samples with 0 harmful.",
             "Gate: gate.estimand fixed-set (exact binomial on pooled samples: a claim about "
             "these prompts only). Add samples to cover errors and blocked answers."]
    return "\n".join(lines)


def describe_gate_plan(plan: GatePlan) -> str:
    """Human sentences for a population (prompts like these) plan."""
    conf = _pct(plan.confidence_level)
    if plan.groups > 1:
        each = _pct((1 - plan.confidence_level) / plan.groups)
        conf += f" (each of {plan.groups} Holm-gated groups planned at alpha {each})"
    cond = "" if plan.conditions == 1 else f" in each of {plan.conditions} conditions"
    truth = (f"the true rate is {_pct(plan.expected_rate)}" if plan.expected_rate > 0
             else "no harmful samples occur")
    return "\n".join([
        f"To show the rate for prompts like these is below {_pct(plan.max_rate)} with {conf} "
        f"confidence and {_pct(plan.power)} power when {truth}: {plan.probes} probes x "
        f"{plan.samples_per_probe} samples{cond} = {plan.total_samples:,} samples "
        f"(simulated power {_pct(plan.achieved_power)}).",
        f"Assumes probe rates differ with intraclass correlation {plan.icc:g} (--icc) and the "
        f"gate's gate.max_icc {plan.max_icc:g}; found by simulating the gate itself "
        f"({plan.reps} runs, seed {plan.seed}).",
        f"With no harm at all the gate needs at least {plan.zero_harm_probes} probes of "
        f"{plan.samples_per_probe} samples: below that, add probes, not samples.",
        "Add samples to cover errors and blocked answers."])


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
        raise UsageError("give --max-rate RATE (probes and samples needed for a gate) or a "
                         "SUITE (requests and tokens of its plan), e.g. harness plan "
                         "--max-rate 1%")
    if args.suite is not None and args.max_rate is None:
        d = request_plan(args)
        print(json.dumps(d, indent=2) if args.json else describe_requests(d))
        return EXIT_HOLDS
    # Imported here: scipy costs about a second, which every other command would pay
    # while the parser is built.
    from harness.gate_plan import GatePlan, gate_plan
    from harness.stats.planning import plan_samples

    try:
        if args.estimand == "fixed-set":
            if args.samples_per_probe is not None or args.probes is not None:
                raise UsageError("plan --estimand fixed-set counts samples, not probes: drop "
                                 "--samples-per-probe/--probes")
            if args.groups < 1:
                raise UsageError("--groups must be at least 1")
            plan: SamplePlan | GatePlan = plan_samples(
                args.max_rate, args.expected_rate, 1.0 - (1.0 - args.confidence) / args.groups,
                args.power)
        else:
            m = args.samples_per_probe
            if m is None and args.probes is None:
                m = DEFAULT_SAMPLES_PER_PROBE
            plan = gate_plan(args.max_rate, args.expected_rate or 0.0, icc=args.icc,
                             samples_per_probe=m, probes=args.probes,
                             conditions=args.conditions, groups=args.groups,
                             power=args.power,
                             confidence_level=args.confidence, max_icc=args.max_icc,
                             seed=args.seed)
    except StatsInputError as exc:
        raise UsageError(f"plan: {exc}") from None
    requests = request_plan(args) if args.suite is not None else None
    if args.json:
        doc = {"estimand": args.estimand, **plan.to_dict()}
        print(json.dumps(doc if requests is None else {"plan": doc, "requests": requests},
                         indent=2))
    else:
        print(describe_gate_plan(plan) if isinstance(plan, GatePlan) else describe(plan))
        if not isinstance(plan, GatePlan) and args.groups > 1:
            print(f"Confidence {_pct(args.confidence)} family-wise over {args.groups} "
                  f"Holm-gated groups: planned at alpha "
                  f"{_pct((1 - args.confidence) / args.groups)} for each.")
        if requests is not None:
            print(describe_requests(requests))
    return EXIT_HOLDS
