"""`harness sim truth` (exact harmful probabilities) and `harness sim serve` (HTTP server)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import date
from pathlib import Path
from typing import Any

from harness.errors import EXIT_HOLDS, UsageError


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2025-01-31"
        ) from None


def register(subparsers: Any) -> None:
    """Add `harness sim truth` and `harness sim serve`."""
    sim = subparsers.add_parser("sim", help="the embedded simulator: ground truth and server")
    sub = sim.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")

    truth = sub.add_parser("truth", help="true harmful probability per cell and probe")
    truth.add_argument("suite", type=Path, help="suite file (YAML)")
    truth.add_argument("--target", default="sim", help="sim or sim:<profile> (default: sim)")
    truth.add_argument("--as-of", type=_date, default=None, help="run date (drifting)")
    truth.add_argument("--epoch", type=_date, default=None, help="watch start (drifting)")
    truth.add_argument("--filter-mode", choices=("refuse", "block"), default="refuse")
    truth.add_argument("--json", action="store_true", help="print JSON")
    truth.set_defaults(func=_truth)

    serve = sub.add_parser("serve", help="serve the simulator as an OpenAI-compatible API "
                           "on 127.0.0.1")
    serve.add_argument("--port", type=int, default=8089, help="port (0 = any free port)")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    serve.add_argument("--profile", default="vulnerable",
                       help="profile for model 'sim' (vulnerable, patched, drifting, refuse-all)")
    serve.add_argument("--as-of", type=_date, default=None, help="run date (drifting)")
    serve.add_argument("--epoch", type=_date, default=None, help="watch start (drifting)")
    serve.add_argument("--filter-mode", choices=("refuse", "block"), default="refuse",
                       help="how the patched input filter answers (canned refusal or "
                       "content-filter block)")
    serve.add_argument("--api-key", default=None,
                       help="require this Bearer token (test hook; default: any token)")
    serve.add_argument("--fail-rate", type=float, default=0.0,
                       help="share of requests answered 503 (seeded; test hook)")
    serve.add_argument("--fail-seed", type=int, default=0)
    serve.add_argument("--status-sequence", default="",
                       help="comma list of failures for the first requests, e.g. "
                       "'429:1,500,drop' (test hook)")
    serve.add_argument("--no-n", action="store_true", help="reject n > 1 with HTTP 400")
    serve.add_argument("--ignore-n", action="store_true",
                       help="answer one choice whatever n asks for (as llama.cpp and Ollama do)")
    serve.add_argument("--batch-delay", type=float, default=0.0, metavar="SECONDS",
                       help="how long a batch (/v1/batches) stays in_progress before it is "
                       "answered (default 0)")
    serve.add_argument("--rpm", type=float, default=None, metavar="N",
                       help="rate limit: requests per minute, answered 429 with Retry-After "
                       "and x-ratelimit-* headers past it (as OpenAI does)")
    serve.add_argument("--tpm", type=float, default=None, metavar="N",
                       help="rate limit: tokens per minute (prompt characters / 4 + max_tokens "
                       "x n, charged on arrival)")
    serve.add_argument("--rate-burst-s", type=float, default=1.0, metavar="S",
                       help="seconds of the rate each limit's bucket holds (default 1)")
    serve.add_argument("--no-ratelimit-headers", action="store_true",
                       help="send no x-ratelimit-* headers (a provider that does not)")
    serve.set_defaults(func=_serve)

    sim.set_defaults(func=lambda args: _no_sub(sim))


def _no_sub(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _profile(target: str) -> str:
    from harness.sim.model import PROFILES
    from harness.targets import parse_spec

    kind, arg = parse_spec(target)
    if kind != "sim":
        raise UsageError(f"--target {target!r}: ground truth exists only for sim targets "
                         "(sim or sim:<profile>)")
    profile = arg or "vulnerable"
    if profile not in PROFILES:
        from harness.errors import RegistryError

        raise RegistryError("sim profile", profile, PROFILES)
    return profile


def _truth(args: argparse.Namespace) -> int:
    from harness.sim.truth import truth

    profile = _profile(args.target)
    from harness.suites import load_suite

    suite = load_suite(args.suite)
    table = truth(suite, profile, as_of=args.as_of, epoch=args.epoch,
                  filter_mode=args.filter_mode)
    if args.json:
        json.dump(table, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_HOLDS
    print(f"sim:{table['profile']}  model {table['model']}  as of {table['as_of']}")
    print(f"{'probe':<32} {'category':<24} {'cells':>5} {'p_harmful':>10}")
    for row in table["probes"]:
        print(f"{row['probe_id']:<32} {row['category']:<24} {row['n_cells']:>5} "
              f"{row['p_harmful']:>10.4f}")
    return EXIT_HOLDS


def _serve(args: argparse.Namespace) -> int:
    from harness.sim.server import ServerConfig, serve_forever

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number (0-65535; 0 = any free)")
    if not 0.0 <= args.fail_rate <= 1.0:
        raise UsageError(f"--fail-rate {args.fail_rate} must be between 0 and 1")
    for flag, value in (("--rpm", args.rpm), ("--tpm", args.tpm),
                        ("--rate-burst-s", args.rate_burst_s)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"{flag} {value:g} must be a positive number, e.g. {flag} 600")
    _profile(f"sim:{args.profile}")
    if args.batch_delay < 0:
        raise UsageError(f"--batch-delay {args.batch_delay} must be 0 or more seconds")
    config = ServerConfig(
        profile=args.profile,
        as_of=args.as_of,
        epoch=args.epoch,
        latency_ms=args.latency_ms,
        api_key=args.api_key,
        fail_rate=args.fail_rate,
        fail_seed=args.fail_seed,
        status_sequence=[t for t in args.status_sequence.split(",") if t.strip()],
        no_n=args.no_n,
        ignore_n=args.ignore_n,
        filter_mode=args.filter_mode,
        batch_delay_s=args.batch_delay,
        rpm=args.rpm,
        tpm=args.tpm,
        rate_burst_s=args.rate_burst_s,
        ratelimit_headers=not args.no_ratelimit_headers,
    )
    serve_forever(config, args.port, announce=lambda line: print(line, flush=True))
    return EXIT_HOLDS
