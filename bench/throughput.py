"""Engine throughput and memory against `harness sim serve` (real HTTP, the official client).

Each configuration runs `harness run` in its own process (so peak RSS is that run's alone)
against a `harness sim serve` process pinned to the other core when `taskset` is available.
Samples/s = samples written / the engine's own sampling time (manifest `sampling_seconds`),
which excludes interpreter start-up and the final analysis.

    python bench/throughput.py            # the acceptance configurations, 3 runs each
    python bench/throughput.py --repeat 5 # min / median / max over 5 runs each
    python bench/throughput.py --memory   # peak RSS from 1e3 to 1e6 samples (in-process sim)

Numbers are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def pinned(cmd: list[str], core: int) -> list[str]:
    """Pin a command to one core when taskset exists (server and client do not compete)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core), *cmd]
    return cmd


def start_server(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(pinned([PY, "-m", "harness.cli", "sim", "serve", "--port", "0",
                                    *args], 1), stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    for _ in range(50):
        line = proc.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise RuntimeError("sim serve did not start")


def make_suite(tmp: Path, samples: int, n_probes: int = 40) -> Path:
    lib = sorted((ROOT / "probes" / "library").glob("*.jsonl"))
    lines: list[str] = []
    for f in lib:
        lines += [ln for ln in f.read_text().splitlines() if ln.strip()]
    probes = tmp / "probes.jsonl"
    probes.write_text("\n".join(lines[:n_probes]) + "\n")
    suite = tmp / "bench.yaml"
    suite.write_text(f"name: bench\nprobes: [{probes}]\ntemperatures: [0.7]\n"
                     f"samples: {samples}\nseed: 1\nmax_rate: {{overall: 0.05}}\n")
    return suite


def measured(cmd: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a command in a wrapper process that reports the command's own peak RSS (MB)."""
    wrapper = ("import resource,subprocess,sys;"
               "p=subprocess.run(sys.argv[1:]);"
               "print('RSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
               "sys.exit(p.returncode)")
    proc = subprocess.run([PY, "-c", wrapper, *cmd], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "CI": "1"})
    rss = [ln for ln in proc.stdout.splitlines() if ln.startswith("RSS ")]
    return proc, (int(rss[-1].split()[1]) / 1024 if rss else float("nan"))


def run_once(suite: Path, out: Path, target: list[str], concurrency: int) -> dict[str, float]:
    t0 = time.monotonic()
    proc, rss_mb = measured(pinned([PY, "-m", "harness.cli", "run", str(suite), "--out",
                                    str(out), "--concurrency", str(concurrency), "--quiet",
                                    *target], 0))
    wall = time.monotonic() - t0
    if proc.returncode not in (0, 1, 3):
        raise RuntimeError(proc.stderr)
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    n = manifest["samples_written_this_session"]
    secs = manifest["sampling_seconds"]
    return {"samples": n, "sampling_s": secs, "samples_per_s": n / secs, "wall_s": wall,
            "peak_rss_mb": rss_mb,
            "n_batching": bool(manifest["target"].get("n_batching", False))}


def throughput(repeat: int) -> None:
    """Each configuration `repeat` times (fresh server each time): min / median / max."""
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        configs = [
            ("latency 200 ms, concurrency 64, one sample a request", ["--latency-ms", "200",
                                                                     "--no-n"], 64, 150),
            ("latency 0 ms, concurrency 64, one sample a request", ["--no-n"], 64, 150),
            ("latency 0 ms, concurrency 64, n-choice batching", [], 64, 1000),
        ]
        for name, server_args, conc, samples in configs:
            runs = []
            for _ in range(repeat):
                server, url = start_server(*server_args)
                try:
                    suite = make_suite(tmp, samples)
                    out = tmp / f"out{len(rows)}"
                    runs.append(run_once(suite, out, ["--target", "openai:sim-vulnerable",
                                                      "--base-url", url], conc))
                finally:
                    server.terminate()
                    server.wait()
                rows.append((name, runs[-1]))
            rates = sorted(r["samples_per_s"] for r in runs)
            r = runs[-1]
            print(f"{name}: {r['samples']:,} samples x {repeat}, samples/s min "
                  f"{rates[0]:,.0f} median {rates[len(rates) // 2]:,.0f} max {rates[-1]:,.0f}, "
                  f"peak RSS {max(x['peak_rss_mb'] for x in runs):.0f} MB, "
                  f"n_batching={r['n_batching']}, CPU steal {steal_percent():.1f}%", flush=True)


_last_stat: list[int] = []


def steal_percent() -> float:
    """Share of CPU time the hypervisor took from this VM since the last call (/proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    except (OSError, ValueError):
        return float("nan")
    previous = _last_stat[:] or [0] * 8
    _last_stat[:] = fields
    delta = [a - b for a, b in zip(fields, previous, strict=True)]
    return 100.0 * delta[7] / max(sum(delta), 1)


def memory() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for total in (1_000, 10_000, 100_000, 1_000_000):
            suite = make_suite(tmp, total // 40)
            out = tmp / f"mem{total}"
            t0 = time.monotonic()
            proc, rss_mb = measured([PY, "-m", "harness.cli", "run", str(suite), "--out",
                                     str(out), "--quiet", "--target", "sim"])
            if proc.returncode not in (0, 1, 3):
                raise RuntimeError(proc.stderr)
            print(f"{total:>9,} samples (in-process sim): peak RSS {rss_mb:.0f} MB, "
                  f"{time.monotonic() - t0:.0f} s", flush=True)
            shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory", action="store_true", help="peak RSS from 1e3 to 1e6 samples")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per configuration (the machine is a shared VM; default 3)")
    args = ap.parse_args()
    if args.memory:
        memory()
    else:
        steal_percent()
        throughput(max(1, args.repeat))


if __name__ == "__main__":
    main()
