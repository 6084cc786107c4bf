"""Issue 12 (Watch): verification and breach detection stay valid when the rate changes.

Unit checks of `harness.stats.windowed` against scipy's binomial, and simulations through
`evaluate_watch` (what ``harness watch status`` calls) via `harness.watch.simulate`. Fast
subsets here; the full grid is `@pytest.mark.slow` and `bench/decision_tables.py --section watch`.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from scipy import stats as sps

from harness.errors import StatsInputError
from harness.stats.windowed import (
    exact_lower,
    exact_upper,
    recent_rate_breach,
    verification_alpha,
    verify_rate,
    window_nights,
)
from harness.watch.model import WatchDefinition
from harness.watch.simulate import simulate_watch, step_rates

MAX = 0.05


def _defn(days: int = 60) -> WatchDefinition:
    return WatchDefinition(name="w", suite="s.yaml", target="sim", max_rate=MAX, days=days,
                           start=date(2026, 1, 1))


def test_exact_bounds_match_scipy_binomial_tails() -> None:
    for k, n, a in [(0, 100, 0.05), (3, 200, 0.025), (40, 1000, 1e-4)]:
        up = exact_upper(k, n, a)
        assert sps.binom.cdf(k, n, up) == pytest.approx(a, rel=1e-6)
        if k:
            lo = exact_lower(k, n, a)
            assert sps.binom.sf(k - 1, n, lo) == pytest.approx(a, rel=1e-6)
    assert exact_upper(0, 0, 0.05) == 1.0 and exact_lower(0, 10, 0.05) == 0.0


def test_verification_levels_sum_to_alpha() -> None:
    total = sum(verification_alpha(0.05, i) for i in range(1, 100_000))
    assert 0.0499 < total <= 0.05
    assert verification_alpha(0.05, 1) == 0.025
    with pytest.raises(StatsInputError):
        verification_alpha(0.05, 0)


def test_verify_needs_both_the_period_and_the_final_window() -> None:
    # 40 clean nights then 20 nights at 8%: the period is fine, its end is not.
    k = [1] * 40 + [16] * 20
    n = [200] * 60
    v = verify_rate(k, n, MAX, alpha=0.025, window=20)
    assert v.period_high < MAX and v.window_high > MAX and not v.verified
    assert v.high == v.window_high and v.window_n == 4000 and v.window_n_harmful == 320
    assert verify_rate([1] * 60, n, MAX, alpha=0.025, window=20).verified


def test_recent_window_alarms_on_a_rise_the_whole_segment_averages_away() -> None:
    k = [10] * 40 + [75] * 10  # 1% for 40 nights of 1,000, then 7.5%
    n = [1000] * 50
    wb = recent_rate_breach(k, n, MAX, alpha=0.025, window=10, planned_looks=60)
    assert wb is not None and 40 <= wb.look <= 49 and wb.low > MAX
    assert wb.n_harmful == sum(k[wb.first_look_in_window: wb.look + 1])
    assert recent_rate_breach([50] * 50, n, MAX, alpha=0.025, window=10,
                              planned_looks=60) is None


def test_window_sizes() -> None:
    assert (window_nights(60, 6), window_nights(60, 3), window_nights(2, 6)) == (10, 20, 1)


def _share(scenario: list[float], n: int, reps: int, seed: int) -> tuple[float, float]:
    """(share ending verified, share with any alarm on nights 20-29) over simulated watches."""
    rng = np.random.default_rng(seed)
    d = _defn(len(scenario))
    verified = flagged = 0
    for _ in range(reps):
        st = simulate_watch(d, scenario, n, rng)
        verified += st.status == "verified"
        flagged += any(19 <= a.run_index <= 28 for a in st.alarms)
    return verified / reps, flagged / reps


def test_stationary_at_the_max_is_rarely_verified() -> None:
    verified, _ = _share([MAX] * 60, 1000, 80, seed=1201)
    assert verified <= 0.05


def test_step_above_the_max_is_not_verified_and_is_flagged_within_ten_nights() -> None:
    verified, flagged = _share(step_rates(60, 0.6 * MAX, 1.2 * MAX, 20), 1000, 80, seed=1202)
    assert verified <= 0.05
    assert flagged >= 0.80


def test_stationary_at_half_the_max_is_verified() -> None:
    verified, _ = _share([0.5 * MAX] * 60, 100, 60, seed=1203)
    assert verified >= 0.80


@pytest.mark.slow
@pytest.mark.parametrize("n", [100, 300, 1000, 3000])
def test_watch_grid(n: int) -> None:
    """The issue's three watch requirements at every nightly size (400 watches each)."""
    reps = 400 if n >= 1000 else 200
    v_max, _ = _share([MAX] * 60, n, reps, seed=n)
    v_step, f_step = _share(step_rates(60, 0.6 * MAX, 1.2 * MAX, 20), n, reps, seed=n + 1)
    v_half, _ = _share([0.5 * MAX] * 60, n, reps, seed=n + 2)
    assert v_max <= 0.05 and v_step <= 0.05 and v_half >= 0.80
    if n >= 1000:
        assert f_step >= 0.80


def test_each_night_shows_the_bound_that_would_decide_verification() -> None:
    rng = np.random.default_rng(1204)
    st = simulate_watch(_defn(30), [0.5 * MAX] * 30, 400, rng)
    assert st.status == "verified" and st.verification is not None
    last = st.points[-1]
    assert last.verify_high == pytest.approx(st.verification["high"])
    assert last.verify_high is not None and last.verify_high < MAX
    # first night: one night of 400 samples decides nothing tighter than its own exact bound
    first = st.points[0]
    assert first.verify_high == pytest.approx(exact_upper(first.n_harmful, 400, 0.025))
    assert st.to_dict()["runs_detail"][-1]["verify_high"] == last.verify_high
