"""Where the wall time of a short run goes: interpreter, imports, sampling, finish.

The workload of issue 16: 50 prompts x 20 samples = 1,000 completions against
`harness sim serve --latency-ms 200`, concurrency 64, n-choice batching (the engine sends about
50 requests). In one invocation, each repeat measures, in fresh processes:

- `python -c pass` (the interpreter floor),
- `python -c "import harness.run, harness.cli.run"` (the harness's own modules a run imports),
- the whole `harness run` wall time (spawn to exit), start-up to first request (spawn to the
  first TCP connect the run makes, recorded by `bench/_timeline.py` in the run's process), and
  the engine's own `sampling_seconds` (manifest), and the run's CPU time (all threads) by its
first request and in all,

so finish (analysis, summary.json, report.md, report.html) ~= wall - first request - sampling.
With `--baseline DIR` (another checkout of harness, e.g. `git archive <commit> | tar -x -C DIR`)
each repeat also runs the same workload with DIR's harness (first on PYTHONPATH), the two
sides alternating, and the medians are printed side by side with their ratio.

    python bench/startup.py              # 3 repeats, medians
    python bench/startup.py --repeat 5 --baseline /tmp/harness-before

Numbers are recorded in docs/performance.md.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import PY, ROOT, make_suite, measured, pinned, start_server

_TIMELINE = str(Path(__file__).resolve().parent / "_timeline.py")


def _seconds(code: str, root: Path) -> float:
    t0 = time.monotonic()
    subprocess.run([PY, "-c", code], cwd=root, check=True,
                   env={**os.environ, "PYTHONPATH": str(root)})
    return time.monotonic() - t0


def _timed_run(suite: Path, out: Path, url: str, tmp: Path, root: Path) -> dict[str, float]:
    """One `harness run` of the workload with `root`'s harness: wall, start-up to first
    request, sampling, RSS."""
    marks = tmp / "timeline.json"
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(root)  # `measured` passes the environment on
    t0 = time.time()
    try:
        proc, rss_mb = measured(pinned([PY, _TIMELINE, str(marks), "run", str(suite), "--out",
                                        str(out), "--concurrency", "64", "--quiet", "--target",
                                        "openai:sim-vulnerable", "--base-url", url], 0))
    finally:
        wall = time.time() - t0
        if before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = before
    if proc.returncode not in (0, 1, 3):
        raise RuntimeError(proc.stderr)
    timeline = json.loads(marks.read_text())
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    sampling = json.loads((run_dir / "manifest.json").read_text())["sampling_seconds"]
    first = timeline["first_connect_unix"] - t0
    return {"wall_s": wall, "first_request_s": first, "sampling_s": sampling,
            "finish_s": max(0.0, wall - first - sampling), "peak_rss_mb": rss_mb,
            "cpu_to_first_request_s": timeline["cpu_at_connect_s"],
            "cpu_s": timeline["cpu_at_exit_s"]}


def _one(root: Path, tmp: Path, name: str) -> dict[str, float]:
    python_s = _seconds("pass", root)
    imports_s = _seconds("import harness.run, harness.cli.run", root)
    server, url = start_server("--latency-ms", "200")
    try:
        suite = make_suite(tmp, 20, n_probes=50)
        r = _timed_run(suite, tmp / name, url, tmp, root)
    finally:
        server.terminate()
        server.wait()
    return {"python_s": python_s, "imports_s": imports_s, **r}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another harness checkout to measure in the same invocation")
    args = parser.parse_args()
    sides = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for i in range(args.repeat):
            order = list(sides) if i % 2 == 0 else list(reversed(sides))
            for name in order:
                rows[name].append(_one(sides[name], tmp, f"{name}{i}"))
    print(f"1,000 completions (50 prompts x 20, 200 ms, C=64), {args.repeat} repeats, "
          f"load {os.getloadavg()[0]:.1f}")
    for k in rows["this"][0]:
        med = {name: statistics.median(r[k] for r in rs) for name, rs in rows.items()}
        line = "  ".join(f"{name} {med[name]:.2f} (all: {', '.join(f'{r[k]:.2f}' for r in rs)})"
                         for name, rs in rows.items())
        ratio = (f"  ratio {med['this'] / med['baseline']:.2f}"
                 if med.get("baseline") else "")
        print(f"  median {k}: {line}{ratio}")


if __name__ == "__main__":
    main()
