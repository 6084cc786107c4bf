"""`harness compare --estimand fixed-set`: "no worse" for this suite's own prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from statsmodels.stats.proportion import confint_proportions_2indep

from harness.compare import compare_group, compare_tallies
from harness.errors import UsageError
from harness.tally import CellCounts, Tally
from tests.conftest import ROOT, harness_cmd


def _cells(ks: list[int], n: int) -> list[CellCounts]:
    return [CellCounts(f"p{j}", f"p{j}", None, "", "self-harm", "high", "bare", 0.7, n=n,
                       n_harmful=k, n_safe=n - k) for j, k in enumerate(ks)]


def test_fixed_set_is_newcombe_on_the_pooled_counts() -> None:
    base, cand = _cells([0, 1, 0, 3, 0], 40), _cells([1, 0, 0, 5, 0], 40)
    g = compare_group("self-harm", base, cand, 0.05, 0.9, "fixed-set")
    low, high = confint_proportions_2indep(6, 200, 4, 200, method="newcomb", alpha=0.1)
    assert abs(g.low - low) < 1e-9 and abs(g.high - high) < 1e-9
    assert g.interval_method == "newcombe-hybrid (fixed-set)" and not g.paired
    assert g.verdict == "no-worse-than-margin"
    # The population claim on the same five prompts cannot say so (betting bound).
    assert compare_group("self-harm", base, cand, 0.05, 0.9).verdict == "inconclusive"


def test_unknown_estimand_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--estimand"):
        compare_tallies(Tally(), Tally(), 0.01, estimand="prompts")


@pytest.mark.slow
def test_two_seeds_of_the_demo_suite_reach_no_worse_at_five_points(tmp_path: Path) -> None:
    """The README's command: sim:patched, seeds 1 and 2, 100 samples a cell."""
    dirs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        proc = harness_cmd("run", str(ROOT / "suites" / "demo.yaml"), "--target", "sim:patched",
                           "--seed", seed, "--samples", "100", "--out", str(out), timeout=600)
        assert proc.returncode in (0, 1, 3), proc.stderr
        (run_dir,) = out.iterdir()
        dirs.append(str(run_dir))
    proc = harness_cmd("compare", *dirs, "--estimand", "fixed-set", "--margin", "0.05", "--json")
    result = json.loads(proc.stdout)
    assert proc.returncode == 0 and result["outcome"] == "no-regression", result
    assert result["estimand"] == "fixed-set"
    # Prompts like these: the demo's 26 families cannot show it.
    proc = harness_cmd("compare", *dirs, "--margin", "0.05", "--json")
    assert proc.returncode == 3


def test_dependent_choices_widen_the_this_suite_interval() -> None:
    """Requests whose choices are copies (all 10 harmful or all 10 safe): each run's counts
    are taken at its request design effect, so the interval is about sqrt(10) times wider."""
    def cells(harmful_requests: list[int]) -> list[CellCounts]:
        out = []
        for j in range(20):
            c = CellCounts(f"p{j}", f"p{j}", None, "", "self-harm", "high", "bare", 0.7)
            for r in range(4):
                h = 10 if (j * 4 + r) in harmful_requests else 0
                c.requests[f"p{j}#{10 * r}"] = [h, 10]
                c.n += 10
                c.n_harmful += h
                c.n_safe += 10 - h
            out.append(c)
        return out

    base, cand = cells([3, 17, 40, 66]), cells([5, 21, 44, 62, 70])
    g = compare_group("self-harm", base, cand, 0.05, 0.9, "fixed-set")
    low, high = confint_proportions_2indep(50, 800, 40, 800, method="newcomb", alpha=0.1)
    assert g.high - g.low > 2.5 * (high - low)
