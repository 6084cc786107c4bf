"""`harness compare` on real simulator runs; the statistics checked independently."""

from __future__ import annotations

import json
from pathlib import Path

from statsmodels.stats.proportion import confint_proportions_2indep

from harness.compare import compare_group, compare_tallies
from harness.run import RunOptions, run_suite
from harness.tally import CellCounts, Tally
from tests.conftest import harness_cmd, write_small_suite


def _run(suite: Path, out: Path, target: str, seed: int = 11) -> Path:
    from harness.settings import Overrides

    res = run_suite(suite, RunOptions(target=target, out_dir=out, progress=False,
                                      use_env=False, overrides=Overrides(seed=seed)))
    return res.run_dir


def test_compare_patched_candidate_against_vulnerable_baseline(tmp_path: Path) -> None:
    suite = write_small_suite(tmp_path, samples=30)
    base = _run(suite, tmp_path / "out", "sim:vulnerable")
    cand = _run(suite, tmp_path / "out", "sim:patched")
    proc = harness_cmd("compare", str(base), str(cand), "--margin", "0.02", "--json")
    assert proc.returncode in (0, 3), proc.stderr
    result = json.loads(proc.stdout)
    overall = next(g for g in result["groups"] if g["key"] == "overall")
    assert overall["paired"] is True and overall["n_shared_probes"] == 4
    assert overall["difference"] < 0  # the patched model is less harmful
    assert overall["verdict"] in ("better", "no-worse-than-margin", "inconclusive")
    assert (cand / "compare.md").exists()
    # Swapped: the vulnerable model as candidate is a regression (exit 1).
    proc = harness_cmd("compare", str(cand), str(base), "--margin", "0.02")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "REGRESSION" in proc.stdout


def test_unpaired_groups_use_newcombe(tmp_path: Path) -> None:
    def cell(probe: str, k: int, n: int) -> CellCounts:
        return CellCounts(probe, probe, None, "", "self-harm", "high", "bare", 0.0, n=n,
                          n_harmful=k, n_safe=n - k)

    g = compare_group("self-harm", [cell("a", 4, 200)], [cell("b", 15, 200)], 0.01, 0.9)
    assert not g.paired
    low, high = confint_proportions_2indep(15, 200, 4, 200, method="newcomb", alpha=0.1)
    assert abs(g.low - low) < 1e-6 and abs(g.high - high) < 1e-6 and g.interval_high == g.high
    assert g.verdict == "worse"


def test_bonferroni_level_over_groups() -> None:
    t = Tally()
    for cat in ("self-harm", "targeted-harm"):
        for i in range(3):
            t.add({"probe_id": f"{cat}-{i}", "category": cat, "context": "bare",
                   "temperature": 0.0, "outcome": "safe"})
    res = compare_tallies(t, t, margin=0.01, confidence_level=0.95)
    assert len(res["groups"]) == 3  # overall and two categories
    assert abs(res["interval_level"] - (1 - 2 * 0.05 / 3)) < 1e-12


def test_only_gated_groups_decide_and_share_the_correction() -> None:
    # 60 clean probes in "self-harm" and one harmful-in-candidate probe in "targeted-harm".
    base, cand = Tally(), Tally()
    for i in range(60):
        for t, outcome in ((base, "safe"), (cand, "safe")):
            for s in range(5):
                t.add({"probe_id": f"sh-{i}", "category": "self-harm", "context": "bare",
                       "temperature": 0.0, "sample_index": s, "outcome": outcome})
    for t, outcome in ((base, "safe"), (cand, "harmful")):
        for s in range(5):
            t.add({"probe_id": "th-0", "category": "targeted-harm", "context": "bare",
                   "temperature": 0.0, "sample_index": s, "outcome": outcome})
    every = compare_tallies(base, cand, margin=0.2, confidence_level=0.95)
    gated = compare_tallies(base, cand, margin=0.2, confidence_level=0.95,
                            gated={"self-harm"})
    assert every["outcome"] != "no-regression"  # targeted-harm (one probe) cannot settle
    assert gated["deciding_groups"] == ["self-harm"]
    assert abs(gated["interval_level"] - 0.9) < 1e-12
    assert gated["outcome"] == "no-regression"
    rows = {g["key"]: g for g in gated["groups"]}
    assert rows["self-harm"]["gated"] and not rows["targeted-harm"]["gated"]


def test_compare_usage_errors(tmp_path: Path) -> None:
    proc = harness_cmd("compare", str(tmp_path / "nope"), str(tmp_path / "nope2"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
