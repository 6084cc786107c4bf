"""Goodput under a rate limit: adaptive concurrency against a fixed-concurrency baseline.

One invocation measures both sides against the same `harness sim serve --rpm 600 --tpm 60000`
process (OpenAI-style limits: 429 with Retry-After and x-ratelimit-* headers; real time, no
scaled clock), alternating the sides in each repeat:

* adaptive: `harness run`'s openai target as shipped (it reads the limit headers, paces its
  requests, halves its window of requests in flight on a 429; `--concurrency 16` is only the
  ceiling);
* fixed: the same target with adaptation off (`OpenAITarget(adaptive=False)`): 16 requests in
  flight, every 429 retried by the shared retry policy (tenacity; Retry-After honoured, 6
  attempts), as harness did before the limiter;
* with --bare-server, two more sides against a server that sends no x-ratelimit-* headers
  (only Retry-After): aimd-only (the adaptive target: only the AIMD window and Retry-After
  pauses act) and budget (the same with `--rpm 600 --tpm 60000` given).

The plan is N cells of one sample each (one request each, `max_tokens` 80, about 100 tokens
charged per request, so both limits bind: 600 requests or ~600 requests' tokens a minute).
Per run it reports:

* goodput: requests answered per second of sampling (the engine's `sampling_seconds`, first
  request to last answer) / the rate the limits allow, min(rpm, tpm / tokens per request) a
  minute. The server's buckets also hold one second of that rate at the start (a burst that
  adaptive pacing does not spend), so a client may reach (rate x T + burst) / (rate x T):
  ~1.03 for a 30 s run;
* 429 share: attempts answered 429 / all attempts (each retry is an attempt);
* lost: planned samples without an answer (outcome error) plus samples missing or twice in
  samples.jsonl.

    .venv/bin/python bench/ratelimit.py                  # 300 requests a run, 3 repeats
    .venv/bin/python bench/ratelimit.py --requests 600 --repeats 5 --bare-server --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sim_server  # noqa: E402  (bench/sim_server.py)

from harness.plan import build_messages, plan_cells  # noqa: E402
from harness.run import RunOptions, run_suite  # noqa: E402
from harness.settings import Overrides  # noqa: E402
from harness.store import SAMPLES  # noqa: E402
from harness.suites import load_suite  # noqa: E402
from harness.targets.openai_target import OpenAITarget  # noqa: E402
from harness.targets.ratelimit import RateBudget, estimate_tokens  # noqa: E402

RPM, TPM, MAX_TOKENS, CONCURRENCY = 600.0, 60_000.0, 80, 16
TOPICS = ["the printing press", "tide pools", "sourdough bread", "glaciers", "the abacus",
          "lighthouses", "honey bees", "the telegraph", "volcanoes", "origami"]


def start_server(latency_ms: float, headers: bool) -> tuple[subprocess.Popen[str], str]:
    """`harness sim serve` with the limits, in its own process; (process, base URL)."""
    flags = ["--rpm", f"{RPM:g}", "--tpm", f"{TPM:g}"]
    if not headers:
        flags.append("--no-ratelimit-headers")
    return sim_server.start_server(latency_ms, *flags, stderr=subprocess.DEVNULL)


def write_suite(folder: Path, n: int) -> Path:
    """N benign probes, one context, one temperature, one sample: N requests."""
    probes = [{"id": f"rl-{i:04d}", "category": "over-refusal", "severity": "low",
               "prompt": f"In two sentences, question {i}: what is the history of "
                         f"{TOPICS[i % len(TOPICS)]}?", "expect": {"must_answer": True}}
              for i in range(n)]
    (folder / "probes.jsonl").write_text("".join(json.dumps(p) + "\n" for p in probes))
    suite = folder / "suite.yaml"
    suite.write_text(f"name: ratelimit-bench\nprobes: [probes.jsonl]\ntemperatures: [0.7]\n"
                     f"samples: 1\nseed: 5\nmax_tokens: {MAX_TOKENS}\n"
                     "max_rate: {overall: 0.5}\n")
    return suite


def allowed_per_s(suite_path: Path) -> float:
    """Requests a second the limits allow for this plan's requests."""
    suite = load_suite(suite_path)
    costs = [estimate_tokens(sum(len(m.content) for m in build_messages(c.probe, c.context)),
                             MAX_TOKENS, 1) for c in plan_cells(suite)]
    per_request = statistics.fmean(costs)
    return min(RPM / 60.0, TPM / 60.0 / per_request)


def one_run(side: str, url: str, suite: Path, out: Path, n: int) -> dict[str, Any]:
    """Sample the plan once on one side; the measured figures."""
    target = OpenAITarget("sim", base_url=url, concurrency=CONCURRENCY,
                          adaptive=side != "fixed",
                          budget=RateBudget(RPM, TPM) if side == "budget" else None)
    result = run_suite(suite, RunOptions(
        target=target, out_dir=out, run_id=f"{side}-{time.monotonic_ns()}", progress=False,
        use_env=False, overrides=Overrides(concurrency=CONCURRENCY)))
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    records = [json.loads(line) for line in (result.run_dir / SAMPLES).read_text().splitlines()]
    keys = {(r["probe_id"], r["sample_index"]) for r in records}
    answered = sum(r["outcome"] != "error" for r in records)
    stats = target.limiter.stats
    return {"side": side, "sampling_s": manifest["sampling_seconds"], "answered": answered,
            "lost": n - answered + (len(records) - len(keys)),
            "attempts": stats.attempts, "n_429": stats.rate_limited,
            "share_429": stats.rate_limited / max(1, stats.attempts),
            "window_min": None if stats.decreases == 0 else round(stats.min_window, 2)}


def main() -> int:
    """Run the sides, print per-run figures and medians."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=300, help="requests a run (default 300)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--latency-ms", type=float, default=100.0, help="server latency")
    ap.add_argument("--bare-server", action="store_true",
                    help="also the sides aimd-only and budget, against a server without "
                         "x-ratelimit-* headers")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.pop("HARNESS_CONCURRENCY", None)
    load_before = os.getloadavg()
    runs: list[dict[str, Any]] = []
    servers = {"headers": start_server(args.latency_ms, True)}
    if args.bare_server:
        servers["bare"] = start_server(args.latency_ms, False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            suite = write_suite(Path(tmp), args.requests)
            rate = allowed_per_s(suite)
            sides = ["adaptive", "fixed"] + (["aimd-only", "budget"] if args.bare_server
                                             else [])
            for rep in range(args.repeats):
                order = sides if rep % 2 == 0 else sides[::-1]
                for side in order:
                    time.sleep(1.5)  # the server's buckets refill between runs
                    url = servers["bare" if side in ("aimd-only", "budget") else "headers"][1]
                    got = one_run(side, url, suite, Path(tmp) / "out", args.requests)
                    got["goodput"] = got["answered"] / (rate * got["sampling_s"])
                    got["repeat"] = rep + 1
                    runs.append(got)
                    if not args.json:
                        print(f"{rep + 1} {side:10} goodput {got['goodput']:.3f}  429 share "
                              f"{got['share_429']:.3f}  lost {got['lost']:3}  "
                              f"{got['sampling_s']:6.1f} s  attempts {got['attempts']}",
                              flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait()
    medians = {side: {k: statistics.median(r[k] for r in runs if r["side"] == side)
                      for k in ("goodput", "share_429", "lost", "sampling_s")}
               for side in dict.fromkeys(r["side"] for r in runs)}
    report = {"rpm": RPM, "tpm": TPM, "requests_per_run": args.requests,
              "latency_ms": args.latency_ms, "concurrency": CONCURRENCY,
              "allowed_requests_per_s": round(rate, 3), "load_before": load_before,
              "load_after": os.getloadavg(), "runs": runs, "medians": medians}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"allowed {rate * 60:.0f} requests/min; load {load_before[0]:.1f} -> "
              f"{report['load_after'][0]:.1f} (1-min average, 2 cores)")
        for side, m in medians.items():
            print(f"median {side:10} goodput {m['goodput']:.3f}  429 share "
                  f"{m['share_429']:.3f}  lost {m['lost']:g}  {m['sampling_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
