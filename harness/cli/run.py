"""`harness run SUITE`: sample a target with a suite and decide every gated rate."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.settings import environment


def add_target_options(p: argparse.ArgumentParser) -> None:
    """--target/--base-url/--api-key-env, shared by commands that sample a model."""
    p.add_argument("--target", default=None, metavar="SPEC",
                   help="sim, sim:<profile> (vulnerable, patched, drifting, refuse-all), "
                        "openai:<model>, or openai-batch:<model> (the Batch API: half the "
                        "price, answers within 24 h; docs/scale.md) (default: sim, or "
                        "$HARNESS_TARGET)")
    p.add_argument("--base-url", default=None, metavar="URL",
                   help="OpenAI-compatible endpoint for openai:<model> (or $HARNESS_BASE_URL)")
    p.add_argument("--api-key-env", default=None, metavar="NAME",
                   help="name of the environment variable holding the API key "
                        "(default OPENAI_API_KEY); the key itself is never stored")


def add_inconclusive_option(p: argparse.ArgumentParser) -> None:
    """--inconclusive fail|skip|pass: how JUnit reports an inconclusive verdict."""
    p.add_argument("--inconclusive", choices=("fail", "skip", "pass"), default="fail",
                   help="JUnit: report an inconclusive verdict as a failure (default: release "
                        "gates must not pass on missing evidence), skipped or passed")


# long: one flat list of the run flags reads better than pieces split by accident of order
def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run a suite against a target and report rates with "
                       "confidence intervals",
                       description="Run SUITE and write DIR/<run-id>/ with manifest.json, "
                       "samples.jsonl, summary.json and report.md. Exit codes: 0 holds, "
                       "1 breached, 2 usage or input error, 3 inconclusive, 4 infrastructure.")
    p.add_argument("suite", nargs="?", help="suite file (suites/*.yaml)")
    add_target_options(p)
    p.add_argument("--out", default="results", metavar="DIR", help="results folder")
    p.add_argument("--samples", type=int, default=None, metavar="N", help="samples per cell")
    p.add_argument("--temperatures", default=None, metavar="T,T,..", help="e.g. 0,0.7,1")
    p.add_argument("--seed", type=int, default=None, metavar="S")
    p.add_argument("--concurrency", type=int, default=None, metavar="C",
                   help="requests in flight (default 16)")
    p.add_argument("--rpm", type=float, default=None, metavar="N",
                   help="budget: at most N requests a minute (openai targets; the endpoint's "
                        "x-ratelimit-* headers and 429s also slow the run down)")
    p.add_argument("--tpm", type=float, default=None, metavar="N",
                   help="budget: at most N tokens a minute (prompt characters / 4 + max_tokens "
                        "x n per request, as OpenAI counts them)")
    p.add_argument("--confidence", type=float, default=None, metavar="LEVEL",
                   help="confidence level, e.g. 0.95")
    p.add_argument("--price-per-1k-in", type=float, default=None, metavar="PRICE",
                   help="price of 1,000 prompt tokens, for the cost estimate (or suite "
                        "price:, $HARNESS_PRICE_PER_1K_IN); openai-batch: give the batch price")
    p.add_argument("--price-per-1k-out", type=float, default=None, metavar="PRICE",
                   help="price of 1,000 completion tokens (or $HARNESS_PRICE_PER_1K_OUT)")
    p.add_argument("--max-response-chars", type=int, default=None, metavar="N",
                   help="longest answer kept per sample, in characters (default 100000); "
                   "longer ones are cut before labelling and the record says so")
    p.add_argument("--as-of", default=None, metavar="YYYY-MM-DD",
                   help="run date for date-dependent targets (sim:drifting) and backfills")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run with its own plan, sampling what is "
                        "missing and what ended in error")
    p.add_argument("--keep-errors", action="store_true",
                   help="with --resume: keep samples that ended in error as they are (by "
                        "default a resume samples them again)")
    p.add_argument("--sequential", action="store_true",
                   help="sample in rounds and stop as soon as anytime-valid bounds settle "
                        "every gated rate")
    p.add_argument("--max-samples", type=int, default=None, metavar="N",
                   help="sample budget for --sequential (default: twice the fixed plan)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="sample only part I of N of the plan (cells split by a hash of their "
                        "key, the same on every machine); join the parts with `harness merge`")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local (default) samples here; ray runs --shards N shards as Ray tasks "
                        "and merges them (pip install 'harness[ray]'; docs/scale.md)")
    p.add_argument("--shards", type=int, default=None, metavar="N",
                   help="with --executor ray: how many shards (default: the cluster's CPUs)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --executor ray: a running Ray cluster (default: $RAY_ADDRESS, "
                        "else a local Ray started for this run)")
    p.add_argument("--run-id", default=None, help=argparse.SUPPRESS)
    p.add_argument("--calibration", default=None, metavar="FILE",
                   help="detector calibration (from `harness calibrate`) for corrected rates")
    p.add_argument("--json", action="store_true", help="print summary.json instead of the table")
    p.add_argument("--junit", default=None, metavar="FILE", help="also write JUnit XML here")
    add_inconclusive_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)


def target_options_from_args(args: argparse.Namespace, *, with_env: bool = True
                             ) -> dict[str, str]:
    """The target kind's options: `--base-url`, `--api-key-env` over the environment's
    (HARNESS_BASE_URL); the registry checks that the kind takes them."""
    options = dict(environment().target_options) if with_env else {}
    given = {"base_url": args.base_url, "api_key_env": args.api_key_env}
    options.update({k: v for k, v in given.items() if v is not None})
    return options


def run_options_from_args(args: argparse.Namespace) -> Any:
    """RunOptions from parsed flags (flags > environment > suite > defaults)."""
    from harness.plan import parse_shard
    from harness.run import RunOptions, parse_as_of
    from harness.settings import Overrides, parse_temperatures

    temps = parse_temperatures(args.temperatures) if args.temperatures else None
    if args.samples is not None and args.samples < 1:
        raise UsageError(f"--samples must be at least 1, got {args.samples}")
    for flag, value, unit in (("--rpm", args.rpm, "requests"), ("--tpm", args.tpm, "tokens")):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"{flag} {value:g} must be a positive number of {unit} a minute, "
                             f"e.g. {flag} {600 if unit == 'requests' else 60000}")
    if args.confidence is not None and not 0 < args.confidence < 1:
        raise UsageError(f"--confidence must be in (0, 1), e.g. 0.95; got {args.confidence}")
    return RunOptions(
        target=args.target or environment().target or "sim",
        out_dir=Path(args.out),
        target_options=target_options_from_args(args),
        overrides=Overrides(samples=args.samples, temperatures=temps, seed=args.seed,
                            concurrency=args.concurrency, confidence_level=args.confidence,
                            price_per_1k_in=args.price_per_1k_in,
                            price_per_1k_out=args.price_per_1k_out,
                            max_response_chars=args.max_response_chars),
        as_of=parse_as_of(args.as_of),
        run_id=args.run_id,
        progress=False if args.quiet else None,
        sequential=args.sequential,
        max_samples=args.max_samples,
        calibration=Path(args.calibration) if args.calibration else None,
        shard=parse_shard(args.shard) if args.shard else None,
        rpm=args.rpm,
        tpm=args.tpm,
    )


def print_result(result: Any, args: argparse.Namespace) -> None:
    """Print the summary table (or JSON), write JUnit and the CI step summary."""
    from harness.junit import run_junit
    from harness.report import render_console
    from harness.store import REPORT

    if args.json:
        print(json.dumps(result.summary, indent=2, default=str))
    else:
        print(render_console(result.summary))
        print(f"results: {result.run_dir}")
    if getattr(args, "junit", None):
        from harness.store import write_private_text

        write_private_text(Path(args.junit),
                           run_junit(result.summary, getattr(args, "inconclusive", "fail")))
    step_summary = environment().step_summary
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write((result.run_dir / REPORT).read_text(encoding="utf-8") + "\n")


def check_output_paths(args: argparse.Namespace) -> None:
    """Fail before sampling when an output cannot be written: --out (a folder, created if
    missing), --junit FILE and $GITHUB_STEP_SUMMARY (files). A path of the wrong kind or in
    a missing folder is a usage error (2); a folder we may not write is infrastructure (4).
    Found after the run, the failure would replace the run's real exit code."""
    from harness.errors import InfrastructureError

    def nearest_existing(path: Path) -> Path:
        cur = path
        while not cur.exists() and cur != cur.parent:
            cur = cur.parent
        return cur

    def check_writable_dir(folder: Path, what: str) -> None:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InfrastructureError(f"{what}: cannot write in {folder} (permission denied or "
                                      "read-only); choose another path")

    if not getattr(args, "resume", None):
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file; give a folder (e.g. --out results)")
        base = nearest_existing(out)
        if not base.is_dir():
            raise UsageError(f"--out {out}: {base} is a file, not a folder")
        check_writable_dir(base, f"--out {out}")
    files = [("--junit", getattr(args, "junit", None)),
             ("GITHUB_STEP_SUMMARY", environment().step_summary)]
    for what, value in files:
        if not value:
            continue
        path = Path(value)
        if path.is_dir():
            raise UsageError(f"{what} {path} is a folder; give a file path")
        if not path.parent.is_dir():
            raise UsageError(f"{what} {path}: the folder {path.parent} does not exist")
        if path.exists() and not os.access(path, os.W_OK):
            raise InfrastructureError(f"{what} {path}: not writable; fix its permissions")
        if not path.exists():
            check_writable_dir(path.parent, f"{what} {path}")


def _check_resume_flags(args: argparse.Namespace) -> None:
    """Refuse flags that would change a resumed run's plan; say which flags are applied.

    A resume samples the plan recorded in the run's manifest (target, samples, temperatures,
    seed, confidence, --as-of, --sequential and its budget): a different value would mix two
    plans in one run. --concurrency, --api-key-env, --calibration and --base-url (the same
    endpoint) are applied.
    """
    from harness.settings import parse_temperatures
    from harness.store import load_run

    m = load_run(args.resume).manifest
    s = m.get("settings", {})
    changed: list[str] = []

    def differs(flag: str, given: Any, recorded: Any, shown: Any = None) -> None:
        if given is not None and given != recorded:
            changed.append(f"{flag} {shown if shown is not None else given} (the run's: "
                           f"{recorded})")

    differs("--target", args.target, m.get("target", {}).get("spec"))
    differs("--samples", args.samples, s.get("samples"))
    if args.temperatures:
        differs("--temperatures", list(parse_temperatures(args.temperatures)),
                [float(t) for t in s.get("temperatures", [])], args.temperatures)
    differs("--seed", args.seed, s.get("seed"))
    differs("--confidence", args.confidence, s.get("confidence_level"))
    differs("--max-response-chars", args.max_response_chars,
            s.get("max_response_chars", 100_000))
    differs("--as-of", args.as_of, s.get("as_of"))
    if args.sequential and not s.get("sequential"):
        changed.append("--sequential (the run samples a fixed plan)")
    differs("--max-samples", args.max_samples, s.get("max_samples"))
    price = s.get("price") or {}
    differs("--price-per-1k-in", args.price_per_1k_in, price.get("per_1k_in"))
    differs("--price-per-1k-out", args.price_per_1k_out, price.get("per_1k_out"))
    shard = m.get("shard")
    differs("--shard", args.shard, f"{shard['index']}/{shard['count']}" if shard else None)
    if changed:
        raise UsageError("--resume continues the run's own plan; these flags would change it: "
                         + "; ".join(changed) + ". Drop them, or start a new run.")
    applied = [f for f, v in (("--concurrency", args.concurrency), ("--rpm", args.rpm),
                              ("--tpm", args.tpm),
                              ("--api-key-env", args.api_key_env),
                              ("--calibration", args.calibration)) if v is not None]
    if applied:
        print(f"harness: note: applied to the resumed run: {', '.join(applied)}",
              file=sys.stderr)
    if s.get("sequential"):
        print("harness: note: resuming in --sequential mode, as the run was started",
              file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run import resume_run, run_suite

    if args.keep_errors and not args.resume:
        raise UsageError("--keep-errors only applies with --resume")
    if args.max_samples is not None and not args.sequential and not args.resume:
        raise UsageError("--max-samples only applies with --sequential")
    options = run_options_from_args(args)
    if args.executor != "ray" and (args.shards is not None or args.ray_address):
        raise UsageError("--shards and --ray-address apply with --executor ray; for one part "
                         "of the plan on this machine use --shard I/N")
    check_output_paths(args)
    if args.executor == "ray":
        from harness.ray_executor import RayOptions, run_suite_on_ray

        if args.resume or not args.suite:
            raise UsageError("--executor ray starts a new run of SUITE; resume a failed shard "
                             "with `harness run --resume SHARD_DIR`, then `harness merge`")
        result = run_suite_on_ray(args.suite, options,
                                  RayOptions(shards=args.shards, address=args.ray_address))
    elif args.resume:
        if args.suite:
            raise UsageError("give either SUITE or --resume RUN_DIR, not both")
        _check_resume_flags(args)
        # Only an explicit --base-url (not $HARNESS_BASE_URL) is compared with the run's.
        options = replace(options, target_options=target_options_from_args(args, with_env=False),
                          retry_errors=not args.keep_errors)
        result = resume_run(args.resume, options)
    else:
        if not args.suite:
            raise UsageError("missing SUITE: e.g. `harness run suites/demo.yaml`")
        result = run_suite(args.suite, options)
    print_result(result, args)
    if result.outcome == "error":
        errors = result.summary["errors"]
        failed = errors.get("detector_errors") or {}
        blame = ("; ".join(f"detector {name} failed on {k:,} sample(s): check its settings "
                           "(base_url, model; the samples' `error` field says why)"
                           for name, k in failed.items()) if failed else "check the target")
        print("harness: error: more samples ended in error than max_error_rate allows "
              f"({errors['error_share']:.1%} > {errors['max_error_rate']:.1%}); {blame}",
              file=sys.stderr)
    return int(result.exit_code)
