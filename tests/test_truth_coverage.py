"""Done-when of the run issue: the simulator's true per-probe rates fall inside the reported
95% intervals for the large majority of probes (ground truth from `harness sim truth`)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.run import RunOptions, run_suite
from tests.conftest import ROOT, harness_cmd


def test_true_probe_rates_inside_reported_intervals(tmp_path: Path) -> None:
    for profile in ("vulnerable", "patched"):
        result = run_suite(ROOT / "suites" / "demo.yaml",
                           RunOptions(target=f"sim:{profile}", out_dir=tmp_path,
                                      progress=False, use_env=False))
        truth = harness_cmd("sim", "truth", str(ROOT / "suites" / "demo.yaml"), "--target",
                            f"sim:{profile}", "--json")
        assert truth.returncode == 0, truth.stderr
        true_rate = {p["probe_id"]: p["p_harmful"] for p in json.loads(truth.stdout)["probes"]}
        rows = [g for g in result.summary["groups"] if g["by"] == "probe"]
        assert len(rows) == len(true_rate) >= 30
        inside = [g["ci_low"] <= true_rate[g["key"]] <= g["ci_high"] for g in rows]
        # 95% intervals: expect about 95% coverage; the per-probe pooled count over cells is
        # Poisson-binomial, which makes the binomial interval conservative, not liberal.
        assert sum(inside) / len(inside) >= 0.85, (profile, sum(inside), len(inside))
        overall_truth = json.loads(truth.stdout)
        assert overall_truth["profile"] == profile
