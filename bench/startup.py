"""Where the wall time of a short run goes: interpreter, imports, sampling, finish.

The workload of issue 16: 50 prompts x 20 samples = 1,000 completions against
`harness sim serve --latency-ms 200`, concurrency 64, n-choice batching (the engine sends about
50 requests). In one invocation, each repeat measures, in fresh processes:

- `python -c pass` (the interpreter floor),
- `python -c "import harness.run, harness.cli.run"` (what a run imports before it can sample),
- the whole `harness run` wall time, and the engine's own `sampling_seconds` (manifest),

so finish (analysis, summary.json, report.md, report.html) ~= wall - imports - sampling.

    python bench/startup.py              # 3 repeats, medians
    python bench/startup.py --repeat 5

Numbers are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import PY, ROOT, make_suite, run_once, start_server


def _seconds(code: str) -> float:
    t0 = time.monotonic()
    subprocess.run([PY, "-c", code], cwd=ROOT, check=True)
    return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for i in range(args.repeat):
            python_s = _seconds("pass")
            imports_s = _seconds("import harness.run, harness.cli.run")
            server, url = start_server("--latency-ms", "200")
            try:
                suite = make_suite(tmp, 20, n_probes=50)
                r = run_once(suite, tmp / f"out{i}", ["--target", "openai:sim-vulnerable",
                                                      "--base-url", url], 64)
            finally:
                server.terminate()
                server.wait()
            rows.append({"python_s": python_s, "imports_s": imports_s, "wall_s": r["wall_s"],
                         "sampling_s": r["sampling_s"],
                         "finish_s": max(0.0, r["wall_s"] - imports_s - r["sampling_s"]),
                         "peak_rss_mb": r["peak_rss_mb"]})
    print(f"1,000 completions (50 prompts x 20, 200 ms, C=64), {args.repeat} repeats, "
          f"load {os.getloadavg()[0]:.1f}")
    for k in rows[0]:
        print(f"  median {k}: {statistics.median(r[k] for r in rows):.2f}   "
              f"(all: {', '.join(f'{r[k]:.2f}' for r in rows)})")


if __name__ == "__main__":
    main()
