"""The gate's family-wise error, hint settlement and plan power on the grid of
docs/statistics.md §9, through the real gate (`harness.gate_sim` -> `gate_groups`), the rows
`bench/gate_tables.py --section fwer|hint|plan --reps 400` prints (make test-stats)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.gate_tables import FWER_CASES, HINT_CASES, PLAN_CASES
from harness.gate_plan import gate_plan
from harness.gate_sim import familywise_false_below, hint_settles, power_below


@pytest.mark.slow
@pytest.mark.timeout(900)  # 400 runs of 8 gated groups of up to 300 probes: ~1-4 min on one core
@pytest.mark.parametrize("case", FWER_CASES, ids=[f"{c[0]}x{c[4]}x{c[5]}-{c[1]}-{c[2]}-{c[3]}"
                                                  for c in FWER_CASES])
def test_familywise_false_below_at_most_alpha(case: tuple[int, float, float, str, int, int],
                                              ) -> None:
    groups, rate, icc, shape, probes, samples = case
    f = familywise_false_below(np.random.default_rng(probes * 10 + groups), groups, rate, icc,
                               shape, probes, samples, reps=400)
    assert f <= 0.05 + 0.011  # 400 runs: standard error 1.1 points at 5%


@pytest.mark.slow
@pytest.mark.parametrize("case", HINT_CASES, ids=[f"{c[4]}x{c[5]}-{c[0]}-{c[1]}-{c[2]}"
                                                  for c in HINT_CASES])
def test_the_hint_settles_at_least_half_the_time(case: tuple[float, float, float, str, int, int],
                                                 ) -> None:
    rate, max_rate, icc, shape, probes, samples = case
    share, tried = hint_settles(np.random.default_rng(probes + samples), rate, max_rate, icc,
                                shape, probes, samples, reps=100)
    assert tried >= 20 and share >= 0.5


@pytest.mark.slow
@pytest.mark.parametrize("case", PLAN_CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}"
                                                  for c in PLAN_CASES])
def test_plan_power_is_reached_within_five_points(case: tuple[float, float, float, int]) -> None:
    max_rate, expected, icc, samples = case
    plan = gate_plan(max_rate, expected, icc=icc, samples_per_probe=samples, power=0.8, seed=7)
    got = power_below(np.random.default_rng(41), expected, max_rate, icc, "beta", plan.probes,
                      samples, 400)
    assert abs(got - plan.achieved_power) <= 0.05, (plan.probes, plan.achieved_power, got)
