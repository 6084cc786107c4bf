"""Gate proofs by simulation through the real gate: a fast subset here; the grid is slow."""

from __future__ import annotations

import numpy as np
import pytest

from harness.gate_plan import gate_plan, simulated_power
from harness.gate_sim import familywise_false_below, gate_coverage, power_below


@pytest.mark.parametrize(("c", "m", "rate", "icc", "shape"), [
    (30, 10, 0.05, 0.5, "bursty"), (100, 10, 0.01, 0.0, "beta"), (1, 200, 0.2, 0.3, "beta")])
def test_gate_covers_fast_subset(c: int, m: int, rate: float, icc: float, shape: str) -> None:
    r = gate_coverage(np.random.default_rng(c + m), rate, icc, shape, c, m, reps=150)
    assert r.coverage >= 0.95 - 0.035  # 150 runs: ~1.8-point standard error


def test_familywise_false_below_at_most_alpha_fast() -> None:
    # Few runs (the gate is costly): a loose check here; bench/gate_tables.py --section fwer
    # measures it with 400 runs per row (make test-stats).
    f = familywise_false_below(np.random.default_rng(2), 3, 0.05, 0.0, "beta", 20, 5, reps=25)
    assert f <= 0.05 + 0.1


def test_gate_plan_reaches_its_power_on_fresh_runs() -> None:
    plan = gate_plan(0.05, 0.0, icc=0.0, samples_per_probe=10, power=0.8, seed=1, reps=60)
    assert plan.probes >= 2 and plan.achieved_power >= 0.8
    got = power_below(np.random.default_rng(99), 0.0, 0.05, 0.0, "beta", plan.probes, 10, 60)
    assert got >= 0.8 - 0.1


def test_plan_power_decides_as_gate_groups_does() -> None:
    # simulated_power's shortcut (the p-value under alpha, whole group and each condition)
    # is the decision gate_groups makes: same seed, same runs, same count of "below".
    from harness.gating import GateInput, gate_groups
    from harness.stats.clustered import population_pvalue_below

    rng = np.random.default_rng(4)
    n = [8] * 40
    agree = 0
    for _ in range(6):
        k = rng.binomial(8, rng.beta(0.3, 9.7, size=40))
        (v,) = gate_groups([GateInput("overall", "overall", k.tolist(), n, 0.08)], hints=False)
        agree += (v.verdict == "below") == (population_pvalue_below(k, n, 0.08) < 0.05)
    assert agree == 6
    # Common random numbers: more probes never lose power at zero harm.
    assert simulated_power(0.0, 0.1, 0.2, 16, 4, reps=20) == 1.0


@pytest.mark.slow
def test_gate_tables_fast_section_runs() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "gate_tables.py"
    spec = importlib.util.spec_from_file_location("gate_tables", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    coverage_grid = mod.coverage_grid

    rows = coverage_grid(np.random.default_rng(3), 200, fast=True)
    assert all(float(r[5]) >= 94.5 - 3.0 for r in rows), rows


def test_request_coverage_shows_what_clustering_on_the_request_recovers() -> None:
    from harness.gate_sim import request_coverage

    cov, naive, deff = request_coverage(np.random.default_rng(8), [0.03, 0.05, 0.07], 20, 10,
                                        0.4, reps=60)
    assert naive < 0.88 and cov >= 0.88 and deff > 3
