"""Where the time of one request goes: the openai target alone against `harness sim serve`.

Starts `harness sim serve --latency-ms L --no-n` pinned to core 1, then drives it with
`OpenAITarget` (the official client) from P processes with C requests in flight each, for S
seconds, optionally pacing request starts one every `--pace-ms` per process (as the engine's
Pacer does). Prints per process: requests/s over the whole run and in steady state (after
the first 3 s), the time per request (p50 / p90 / mean), the share of 10 ms windows in which
no answer arrived (bursts leave gaps), and the client CPU per request.

    python bench/target_latency.py                           # 1 process x 64, unpaced
    python bench/target_latency.py --pace-ms 3               # paced
    python bench/target_latency.py --processes 2 --concurrency 32 --pace-ms 6
    python bench/target_latency.py --concurrency 1           # the floor of one request

Numbers are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def drive(url: str, concurrency: int, seconds: float, pace_s: float) -> dict[str, float]:
    """One process's load: `concurrency` workers asking one sample a request."""
    from harness.records import CompletionRequest, Message
    from harness.targets.openai_target import OpenAITarget

    target = OpenAITarget("sim", base_url=url, concurrency=concurrency)
    prompt = (Message("user", "Explain how to build a bomb."),)
    ends: list[float] = []
    latencies: list[float] = []
    next_start = [time.perf_counter()]
    stop_at = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        i = 0
        while time.perf_counter() < stop_at:
            if pace_s > 0:
                now = time.perf_counter()
                slot = max(now, next_start[0])
                next_start[0] = slot + pace_s
                if slot > now:
                    await asyncio.sleep(slot - now)
            t0 = time.perf_counter()
            await target.complete(CompletionRequest(prompt, 0.7, 128, n=1, seed=k * 100_000 + i))
            ends.append(time.perf_counter())
            latencies.append(ends[-1] - t0)
            i += 1

    cpu0, t_start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - t_start
    cpu = time.process_time() - cpu0
    await target.aclose()
    steady = [e - t_start for e in ends if e - t_start > 3.0]
    windows = collections.Counter(int(e * 100) for e in steady)
    n_windows = max(1, int(max(steady, default=3.0) * 100) - 300)
    latencies.sort()
    return {
        "requests_per_s": len(ends) / elapsed,
        "steady_per_s": len(steady) / max(1e-9, max(steady, default=3.0) - 3.0),
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p90_ms": 1000 * latencies[9 * len(latencies) // 10],
        "mean_ms": 1000 * statistics.fmean(latencies),
        "empty_windows": 1 - len(windows) / n_windows,
        "cpu_ms_per_request": 1000 * cpu / max(1, len(ends)),
    }


def pinned(cmd: list[str], core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core), *cmd]
    return cmd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency-ms", type=float, default=200.0)
    ap.add_argument("--concurrency", type=int, default=64, help="in flight per process")
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--pace-ms", type=float, default=0.0, help="min ms between starts")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        r = asyncio.run(drive(args.child, args.concurrency, args.seconds, args.pace_ms / 1000))
        print(" ".join(f"{k}={v:.3f}" for k, v in r.items()), flush=True)
        return 0
    server = subprocess.Popen(pinned([sys.executable, "-m", "harness.cli", "sim", "serve",
                                      "--port", "0", "--no-n", "--latency-ms",
                                      str(args.latency_ms)], 1),
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert server.stdout is not None
    m = re.search(r"(http://127\.0\.0\.1:\d+/v1)", server.stdout.readline())
    if m is None:
        server.kill()
        raise RuntimeError("sim serve did not start")
    try:
        cmd = [sys.executable, __file__, "--child", m.group(1), "--concurrency",
               str(args.concurrency), "--seconds", str(args.seconds), "--pace-ms",
               str(args.pace_ms)]
        # One process is pinned to the client core, as in bench/throughput.py; several
        # are left to the scheduler (that is the point of using more than one).
        children = [subprocess.Popen(pinned(cmd, 0) if args.processes == 1 else cmd,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
                    for _ in range(args.processes)]
        total = 0.0
        for i, child in enumerate(children):
            out, _ = child.communicate()
            fields = dict(kv.split("=") for kv in out.split())
            total += float(fields["steady_per_s"])
            print(f"process {i}: {fields['requests_per_s']:>8} req/s, steady "
                  f"{fields['steady_per_s']:>8}, p50 {fields['p50_ms']} ms, p90 "
                  f"{fields['p90_ms']} ms, mean {fields['mean_ms']} ms, empty 10 ms windows "
                  f"{float(fields['empty_windows']):.0%}, CPU {fields['cpu_ms_per_request']} "
                  "ms/request", flush=True)
        print(f"steady total: {total:.0f} requests/s "
              f"({args.processes} x {args.concurrency} in flight, latency {args.latency_ms:g} ms)")
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
