"""Analysis of a large stored run: samples.jsonl -> tally -> summary.json, report.md, report.html.

Issue 16 asks that 1,000,000 stored sample records reach a summary with clustered intervals
in <= 5 s and <= 500 MB. This script builds such a run folder once (a real `harness run` of
a suite of PROBES probes on the in-process simulator with one sample each gives a genuine
manifest and record shape; the records are then written out SAMPLES times per probe with
seeded outcomes, a few probes carrying most of the harm), and times, in a fresh process each,
the finish step every run ends with (`harness.run.finish_run` after `harness.tally.tally_samples`),
reporting wall time per phase and peak RSS (ru_maxrss).

    python bench/analysis_scale.py                      # 1,000 probes x 1,000 samples, 1 + 3 runs
    python bench/analysis_scale.py --probes 200 --samples 500 --repeat 5
    python bench/analysis_scale.py --reading --repeat 3   # reading only: store reader vs
                                                          # count_samples, no side file / side file

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
from pathlib import Path

import jsonlines
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from harness.run import finish_run
from harness.suites import load_suite
from harness.tally import count_samples
t1 = time.perf_counter()
run_dir, suite_path = Path(sys.argv[1]), Path(sys.argv[2])
had_side_file = (run_dir / "samples.tally.json").exists()
suite = load_suite(suite_path)
manifest = json.loads((run_dir / "manifest.json").read_text())
tally = count_samples(run_dir / "samples.jsonl").tally
t2 = time.perf_counter()
finish_run(suite, run_dir, manifest, tally)
t3 = time.perf_counter()
print(json.dumps({"side_file": had_side_file, "imports_s": t1 - t0, "tally_s": t2 - t1,
                  "finish_s": t3 - t2,
                  "total_s": t3 - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


_READ_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
how, path = sys.argv[1], Path(sys.argv[2])
t0 = time.perf_counter()
from harness.store import iter_sample_dicts
from harness.tally import Tally, cell_key, count_samples, side_file
if how == "store reader":  # what tally_samples did before count_samples
    tally, done = Tally(), set()
    for d in iter_sample_dicts(path):
        key = (cell_key(d), int(d["sample_index"]))
        if key not in done:
            done.add(key)
            tally.add(d)
else:
    if how == "count_samples, no side file":
        side_file(path).unlink(missing_ok=True)
    tally = count_samples(path).tally
print(json.dumps({"read_s": time.perf_counter() - t0, "n": tally.n,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def reading(run_dir: Path, repeat: int) -> None:
    """Each reader `repeat` times in a fresh process, the readers alternating."""
    samples = run_dir / "samples.jsonl"
    hows = ("store reader", "count_samples, no side file", "count_samples, side file")
    rows: dict[str, list[dict[str, float]]] = {h: [] for h in hows}
    for _ in range(repeat):
        for how in hows:
            proc = subprocess.run([PY, "-c", _READ_CHILD, how, str(samples)], cwd=ROOT,
                                  capture_output=True, text=True, check=True)
            rows[how].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    n = {r["n"] for rs in rows.values() for r in rs}
    print(f"reading {samples.stat().st_size / 1e6:.0f} MB ({n} records counted by every "
          f"reader), {repeat} repeats, load {os.getloadavg()[0]:.1f}")
    for how, rs in rows.items():
        times = [r["read_s"] for r in rs]
        print(f"  {how}: median {statistics.median(times):.2f} s "
              f"(all: {', '.join(f'{t:.2f}' for t in times)}), peak RSS "
              f"{max(r['peak_rss_mb'] for r in rs):.0f} MB")


def _probes(path: Path, n_probes: int) -> None:
    """n_probes probes cloned from the library (ids bench-0000...), categories kept."""
    lib: list[dict[str, object]] = []
    for f in sorted((ROOT / "probes" / "library").glob("*.jsonl")):
        with jsonlines.open(f) as reader:
            lib += [p for p in reader if p.get("category") != "over-refusal"]
    with jsonlines.open(path, "w") as writer:
        for i in range(n_probes):
            probe = dict(lib[i % len(lib)])
            probe["id"] = f"bench-{i:04d}"
            probe.pop("parent_id", None)
            writer.write(probe)


def build_run(tmp: Path, n_probes: int, n_samples: int, seed: int = 1) -> tuple[Path, Path]:
    """A finished-looking run folder with n_probes x n_samples records, and its suite file."""
    probes = tmp / "probes.jsonl"
    _probes(probes, n_probes)
    suite = tmp / "scale.yaml"
    suite.write_text(f"name: scale\nprobes: [{probes}]\ntemperatures: [0.7]\n"
                     f"samples: {n_samples}\nseed: {seed}\n", encoding="utf-8")
    out = tmp / "runs"
    subprocess.run([PY, "-m", "harness.cli", "run", str(suite), "--target", "sim", "--samples",
                    "1", "--out", str(out), "--run-id", "scale", "--quiet"], cwd=ROOT, check=False,
                   stdout=subprocess.DEVNULL)
    run_dir = out / "scale"
    samples = run_dir / "samples.jsonl"
    with jsonlines.open(samples) as reader:
        templates = {rec["probe_id"]: rec for rec in reader}
    rng = np.random.default_rng(seed)
    # Bursty harm: 2% of probes at 30%, the rest at 0.2%.
    rates = np.where(rng.random(n_probes) < 0.02, 0.3, 0.002)
    with samples.open("w", encoding="utf-8") as fh:
        for j in range(n_probes):
            rec = templates[f"bench-{j:04d}"]
            harmful = rng.random(n_samples) < rates[j]
            for i in range(n_samples):
                rec["sample_index"] = i
                rec["seed"] = rec["seed_sent"] = int(seed * 1_000_003 + j * 10_007 + i)
                rec["outcome"] = "harmful" if harmful[i] else "safe"
                rec["detectors"][0]["harmful"] = bool(harmful[i])
                fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["planned_samples"] = n_probes * n_samples
    manifest["settings"]["samples"] = n_samples
    manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return run_dir, suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reading", action="store_true",
                        help="time only the reading of samples.jsonl (three readers)")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="with --reading: an existing run folder instead of building one")
    args = parser.parse_args()
    if args.reading and args.run_dir:
        reading(args.run_dir, args.repeat)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run_dir, suite = build_run(Path(tmp), args.probes, args.samples)
        if args.reading:
            reading(run_dir, args.repeat)
            return
        size_mb = (run_dir / "samples.jsonl").stat().st_size / 1e6
        rows = []
        # The first repeat reads samples.jsonl itself (and writes samples.tally.json, as the
        # first `harness report` or `compare` of a large run does); later ones use the side file.
        for _ in range(args.repeat + 1):
            proc = subprocess.run([PY, "-c", _CHILD, str(run_dir), str(suite)], cwd=ROOT,
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        summary = json.loads((run_dir / "summary.json").read_text())
    print(f"{args.probes} probes x {args.samples} samples = {args.probes * args.samples:,} "
          f"records ({size_mb:.0f} MB), outcome {summary['outcome']}, "
          f"load {os.getloadavg()[0]:.1f}")
    for name, part in (("first read (no side file)", rows[:1]), ("later reads", rows[1:])):
        print(f"  {name}:")
        for k in (k for k in rows[0] if k != "side_file"):
            print(f"    median {k}: {statistics.median(r[k] for r in part):.2f}   "
                  f"(all: {', '.join(f'{r[k]:.2f}' for r in part)})")


if __name__ == "__main__":
    main()
