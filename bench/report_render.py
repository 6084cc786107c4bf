"""What the HTML report adds to every run: time to render report.html, and its size.

Runs a suite once on the in-process simulator (`harness run`, as a user does), then renders
the report of that run again N times in one process (warm: matplotlib and fonts loaded) and
once in a fresh process (cold: what `harness report` costs). Numbers in docs/performance.md.

    python bench/report_render.py                      # suites/demo.yaml, 5 warm renders
    python bench/report_render.py --suite suites/nightly.yaml --repeat 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default=str(ROOT / "suites" / "demo.yaml"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from harness.html_report import render_html
    from harness.run import RunOptions, run_suite
    from harness.tally import tally_samples

    with tempfile.TemporaryDirectory() as tmp:
        res = run_suite(args.suite, RunOptions(target="sim", out_dir=Path(tmp), progress=False))
        summary = json.loads((res.run_dir / "summary.json").read_text())
        cells = list(tally_samples(res.run_dir / "samples.jsonl")[0].cells.values())
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            html = render_html(summary, cells=cells)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness.cli", "report", str(res.run_dir),
                        "--out", str(Path(tmp) / "cold.html")], check=True, cwd=ROOT,
                       capture_output=True)
        cold = time.perf_counter() - t0
        n_groups = len(summary["groups"])
        print(f"suite {summary['suite']}: {summary['errors']['n']:,} samples, {len(cells)} cells, "
              f"{n_groups} groups")
        print(f"warm render: median {statistics.median(times):.3f} s (min {min(times):.3f}, "
              f"max {max(times):.3f}, n={len(times)})")
        print(f"cold `harness report` (new process, incl. start-up): {cold:.2f} s")
        print(f"report.html: {len(html.encode()) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
