"""Tests of the anytime-valid confidence sequence and the sequential gate.

Independent checks: the mixture martingale against numerical integration of the Beta mixture
(scipy.integrate.quad), widths against Clopper-Pearson (statsmodels), and time-uniform
coverage by simulation with fixed seeds.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from bench.decision_tables import probe_rates, sequential_run
from harness.errors import StatsInputError
from harness.stats.clustered import cluster_rate_interval
from harness.stats.sequential import (
    confidence_sequence,
    confidence_sequence_path,
    ever_above,
    log_mixture_martingale,
    look_level,
    samples_saved,
    sequential_gate,
    spending_weights,
)


def _quad_mixture(s: int, t: int, p: float, t_opt: float, alpha: float) -> float:
    """M_t(p) by numerical integration of the likelihood ratio against the Beta prior.

    The prior is written out from Howard et al. (2021) eq. (3.13) independently of the code:
    rho = v_opt / (2 log(1/alpha) + log(1 + 2 log(1/alpha))), r = max(rho - p(1-p), 1e-3 p(1-p)),
    prior Beta(r/(1-p), r/p) on the alternative rate q.
    """
    v_opt = p * (1 - p) * t_opt
    la = math.log(1 / alpha)
    rho = v_opt / (2 * la + math.log(1 + 2 * la))
    r = max(rho - p * (1 - p), 1e-3 * p * (1 - p))
    prior = sps.beta(r / (1 - p), r / p)

    def integrand(q: float) -> float:
        log_lr = s * (math.log(q) - math.log(p)) + (t - s) * (math.log1p(-q) - math.log1p(-p))
        return math.exp(log_lr + prior.logpdf(q))

    # Split at p and the MLE so quad sees the peaks.
    pts = sorted({1e-15, p, s / t if t else p, 1 - 1e-15})
    total = 0.0
    for lo, hi in itertools.pairwise(pts):
        if hi > lo:
            val, _ = integrate.quad(integrand, lo, hi, limit=400, epsabs=0, epsrel=1e-10)
            total += val
    return total


@pytest.mark.parametrize(
    ("s", "t", "p", "t_opt"),
    [(0, 100, 0.02, 1000), (3, 200, 0.01, 500), (12, 300, 0.05, 300), (40, 100, 0.3, 200),
     (5, 50, 0.2, 1000)],
)
def test_mixture_matches_numerical_integration(s: int, t: int, p: float, t_opt: float) -> None:
    alpha = 0.05
    expected = _quad_mixture(s, t, p, t_opt, alpha)
    got = math.exp(float(log_mixture_martingale(s, t, p, t_opt=t_opt, alpha=alpha)))
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("s", "t"), [(0, 50), (1, 50), (5, 1000), (50, 1000), (81, 263),
                                      (49, 50), (50, 50)])
def test_bounds_sit_on_the_boundary_and_contain_the_estimate(s: int, t: int) -> None:
    alpha = 0.05
    b = confidence_sequence(s, t, confidence_level=1 - alpha, t_opt=t)
    assert b.low <= s / t <= b.high
    log_thr = math.log(1 / alpha)
    for bound, inside in ((b.low, b.low + 1e-6), (b.high, b.high - 1e-6)):
        if 0.0 < bound < 1.0:
            assert log_mixture_martingale(s, t, bound, t_opt=t, alpha=alpha) == pytest.approx(
                log_thr, abs=1e-6)
            assert log_mixture_martingale(s, t, inside, t_opt=t, alpha=alpha) < log_thr
    if s == 0:
        assert b.low == 0.0
    if s == t:
        assert b.high == 1.0


@pytest.mark.parametrize(("s", "t"), [(0, 1000), (5, 1000), (50, 1000), (81, 263), (3, 40)])
def test_cs_is_wider_than_clopper_pearson_but_not_absurdly(s: int, t: int) -> None:
    cs = confidence_sequence(s, t, confidence_level=0.95, t_opt=t)
    lo, hi = proportion_confint(s, t, alpha=0.05, method="beta")
    assert cs.low <= lo + 1e-12 and cs.high >= hi - 1e-12
    # Howard et al. report ~1.1-1.6x fixed-n width at the tuning time.
    assert (cs.high - cs.low) / (hi - lo) < 1.8


def test_no_data_gives_the_unit_interval_and_bad_input_is_refused() -> None:
    b = confidence_sequence(0, 0, t_opt=100)
    assert (b.low, b.high) == (0.0, 1.0)
    with pytest.raises(StatsInputError):
        confidence_sequence(5, 3, t_opt=100)
    with pytest.raises(StatsInputError):
        confidence_sequence(1, 3, t_opt=0)
    with pytest.raises(StatsInputError):
        confidence_sequence(1, 3, confidence_level=95, t_opt=10)


def _simulate_counts(rng: np.random.Generator, p: float | np.ndarray, reps: int, looks: int,
                     per_look: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative harmful and sample counts (reps x looks).

    ``p`` may be a per-prompt array (a fixed panel; each look samples every prompt equally).
    """
    if np.ndim(p) == 0:
        x = rng.binomial(per_look, float(p), size=(reps, looks))
    else:
        probs = np.asarray(p)
        m = per_look // probs.size
        x = rng.binomial(m, probs, size=(reps, looks, probs.size)).sum(axis=-1)
        per_look = m * probs.size
    s = np.cumsum(x, axis=1)
    t = np.cumsum(np.full((reps, looks), per_look), axis=1)
    return s, t


@pytest.mark.parametrize("p", [0.01, 0.05, 0.3])
def test_time_uniform_coverage_over_60_looks(p: float) -> None:
    """P(the CS ever misses the true rate over 60 looks) <= alpha (Ville)."""
    rng = np.random.default_rng(20260101)
    alpha = 0.05
    s, t = _simulate_counts(rng, p, reps=4000, looks=60, per_look=40)
    logm = log_mixture_martingale(s, t, p, t_opt=60 * 40, alpha=alpha)
    miss = np.any(np.asarray(logm) >= math.log(1 / alpha), axis=1)
    assert miss.mean() <= alpha


def test_naive_nightly_intervals_do_miss_more_often_than_alpha() -> None:
    """The simulation above can fail: fixed-n CP intervals re-computed nightly miscover."""
    rng = np.random.default_rng(7)
    alpha = 0.05
    p = 0.3
    s, t = _simulate_counts(rng, p, reps=2000, looks=60, per_look=40)
    lo = sps.beta.ppf(alpha / 2, s, t - s + 1)
    hi = sps.beta.ppf(1 - alpha / 2, s + 1, t - s)
    lo = np.where(s == 0, 0.0, lo)
    miss = np.any((p < lo) | (p > hi), axis=1)
    assert miss.mean() > 2 * alpha


@pytest.mark.parametrize("panel", [False, True])
def test_false_breach_share_over_60_nightly_looks(panel: bool) -> None:
    """Issue 4 proof (fast version): stationary rate at or below the max rate; the share of
    60-night watch periods whose CS lower bound ever passes the max rate is <= 1 - confidence.
    With ``panel`` the nightly count is Poisson-binomial over a fixed prompt panel (rates
    averaging the max rate), the case the module docstring argues is covered by Hoeffding."""
    rng = np.random.default_rng(4)
    confidence = 0.95
    max_rate = 0.05
    p: float | np.ndarray = max_rate
    if panel:
        p = np.array([0.0] * 14 + [0.05] * 4 + [0.5, 0.3])  # mean 0.05, very heterogeneous
    s, t = _simulate_counts(rng, p, reps=3000, looks=60, per_look=40)
    breach = ever_above(s, t, max_rate, confidence_level=confidence, t_opt=60 * 40)
    assert breach.mean() <= 1 - confidence


def test_ever_above_agrees_with_the_inverted_interval() -> None:
    rng = np.random.default_rng(3)
    for _ in range(60):
        t = int(rng.integers(1, 400))
        s = int(rng.integers(0, t + 1))
        theta = float(rng.uniform(0.001, 0.6))
        b = confidence_sequence(s, t, confidence_level=0.9, t_opt=500)
        assert bool(ever_above(np.array([[s]]), np.array([[t]]), theta, confidence_level=0.9,
                               t_opt=500)[0]) == (b.low > theta)


def test_path_running_intersection_is_monotone() -> None:
    rng = np.random.default_rng(11)
    x = rng.binomial(30, 0.1, size=25)
    path = confidence_sequence_path(list(x), [30] * 25, t_opt=750)
    lows = [b.low for b in path]
    highs = [b.high for b in path]
    assert lows == sorted(lows)
    assert highs == sorted(highs, reverse=True)
    assert path[-1].n == 750 and path[-1].n_harmful == int(x.sum())
    raw = confidence_sequence_path(list(x), [30] * 25, t_opt=750, intersect=False)
    assert all(r.low <= b.low and r.high >= b.high for r, b in zip(raw, path, strict=True))


# ------------------------------------------------------------------------------ sequential gate


_CLEAN = {"overall": ([0] * 60, [10] * 60)}


def test_gate_settles_below_and_above_and_applies_bonferroni() -> None:
    d = sequential_gate({"overall": (0, 600), "cat": (30, 100)},
                        {"overall": 0.05, "cat": 0.1}, 0.95, planned_samples=600,
                        clusters_by_group=_CLEAN)
    assert d.action == "stop"
    assert d.group("overall").verdict == "below"
    assert d.group("cat").verdict == "above"
    assert d.verdict == "above"
    assert d.group("cat").confidence_level == pytest.approx(0.975)
    # "below" is the run gate's clustered bound at the Bonferroni level alpha / m ...
    b = cluster_rate_interval([0] * 60, [10] * 60, 0.975, sides="upper")
    assert d.group("overall").high == pytest.approx(b.high)
    assert d.group("overall").n_clusters == 60
    # ... and "above" the fixed-suite confidence sequence at 97.5%.
    cs = confidence_sequence(30, 100, confidence_level=0.975, t_opt=600)
    assert d.group("cat").low == pytest.approx(cs.low)


def test_one_family_cannot_show_below_for_prompts_like_these() -> None:
    # 600 clean samples of one family (no clusters given: the pooled counts are one family):
    # the pooled CS would say below 5%; a single family says nothing about other prompts.
    d = sequential_gate({"overall": (0, 600)}, {"overall": 0.05}, planned_samples=600)
    assert confidence_sequence(0, 600, confidence_level=0.95, t_opt=600).high < 0.05
    # (one cluster at the gate's max ICC 0.5: about 0.9; a single family says little)
    assert d.group("overall").verdict == "inconclusive" and d.group("overall").high >= 0.5


def test_alpha_is_spent_evenly_over_the_planned_looks() -> None:
    assert spending_weights(8).sum() == pytest.approx(1.0)
    assert look_level(0.05, 3, 8) == pytest.approx(0.05 / 8)
    assert look_level(0.05, 9, 8) == 0.0  # beyond the plan: no "below"
    args = ({"overall": (0, 600)}, {"overall": 0.05}, 0.95)
    d = sequential_gate(*args, planned_samples=600, clusters_by_group=_CLEAN, look=2,
                        planned_looks=4)
    b = cluster_rate_interval([0] * 60, [10] * 60, 1 - 0.05 / 4, sides="upper")
    assert d.group("overall").high == pytest.approx(b.high)
    assert d.group("overall").below_alpha == pytest.approx(0.0125)
    late = sequential_gate(*args, planned_samples=600, clusters_by_group=_CLEAN, look=5,
                           planned_looks=4)
    assert late.group("overall").verdict == "inconclusive"
    with pytest.raises(StatsInputError):
        sequential_gate(*args, planned_samples=600, look=0)


def test_gate_continues_then_reports_inconclusive_when_budget_runs_out() -> None:
    clusters = {"overall": ([1, 0, 2, 1], [25, 25, 25, 25])}
    d = sequential_gate({"overall": (4, 100)}, {"overall": 0.05}, planned_samples=400,
                        clusters_by_group=clusters)
    assert d.action == "continue" and d.verdict == "inconclusive"
    d2 = sequential_gate({"overall": (4, 100)}, {"overall": 0.05}, planned_samples=400,
                         budget_exhausted=True, clusters_by_group=clusters)
    assert d2.action == "stop" and d2.verdict == "inconclusive"
    assert "budget" in d2.reason


def test_gate_previous_decision_intersects_bounds() -> None:
    first = sequential_gate({"overall": (0, 200)}, {"overall": 0.01}, planned_samples=400,
                            clusters_by_group={"overall": ([0] * 20, [10] * 20)})
    # a later look with a worse count cannot widen the upper bound past the earlier one
    later = sequential_gate({"overall": (3, 220)}, {"overall": 0.01}, planned_samples=400,
                            previous=first,
                            clusters_by_group={"overall": ([3] + [0] * 19, [11] * 20)})
    assert later.group("overall").high <= first.group("overall").high


def test_gate_input_errors() -> None:
    with pytest.raises(StatsInputError):
        sequential_gate({"overall": (0, 10)}, {}, planned_samples=10)
    with pytest.raises(StatsInputError):
        sequential_gate({"overall": (0, 10)}, {"overall": 2.0}, planned_samples=10)
    with pytest.raises(StatsInputError):
        sequential_gate({"overall": (0, 10)}, {"overall": 0.1}, planned_samples=0)


@pytest.mark.parametrize(("mean", "truth"), [(0.0, "below"), (0.2, "above")])
def test_sequential_reaches_the_right_verdict_with_fewer_samples(mean: float,
                                                                 truth: str) -> None:
    """True rate far from the max rate: correct verdict, fewer samples than the fixed plan
    (60 families x 10 samples; budget twice that)."""
    rng = np.random.default_rng(99)
    used = []
    for _ in range(30):
        verdict, n = sequential_run(probe_rates(rng, 60, mean, 0.1), 10, 0.05, rng)
        assert verdict == truth
        used.append(n)
    assert float(np.mean(used)) <= 0.7 * 600


def _false_below(mean_icc: tuple[float, float], bursty: bool, reps: int, seed: int,
                 families: int = 60, samples: int = 10) -> float:
    rng = np.random.default_rng(seed)
    wrong = 0
    for _ in range(reps):
        rates = probe_rates(rng, families, mean_icc[0], mean_icc[1], bursty)
        wrong += sequential_run(rates, samples, 0.05, rng)[0] == "below"
    return wrong / reps


def test_clustering_does_not_make_sequential_below_anti_conservative() -> None:
    """Audit point 2: at the max with ICC 0.3 the pooled sequence said "below" in 15-16%."""
    assert _false_below((0.05, 0.3), False, 40, seed=12) <= 0.075  # pooled: 15-16%
    # The pooled sequence on the same kind of data really is anti-conservative (the test can
    # fail): share of runs whose pooled CS upper bound ends under the max after 2x the plan.
    rng = np.random.default_rng(13)
    pooled = 0
    for _ in range(200):
        k = rng.binomial(20, probe_rates(rng, 60, 0.05, 0.3))
        pooled += confidence_sequence(int(k.sum()), 1200, t_opt=600).high < 0.05
    assert pooled / 200 > 0.08


@pytest.mark.slow
@pytest.mark.parametrize(("families", "samples"), [(60, 10), (200, 5), (30, 20)])
@pytest.mark.parametrize(("icc", "bursty"), [(0.0, False), (0.1, False), (0.3, False),
                                             (0.0, True)])
def test_sequential_false_below_at_the_max(families: int, samples: int, icc: float,
                                           bursty: bool) -> None:
    """Wrong "below" at the max over every look, for clustered and bursty family rates.

    The allowance above nominal is the fixed clustered gate's own error on these designs
    (audit point 4, issue 12; the sequential gate spends that bound over its looks)."""
    share = _false_below((0.05, icc), bursty, 400, seed=families + int(100 * icc),
                         families=families, samples=samples)
    assert share <= 0.05 + 0.02


def test_samples_saved() -> None:
    assert samples_saved(300, 1000) == {"samples_used": 300, "fixed_plan_samples": 1000,
                                        "samples_saved": 700, "share_saved": 0.7}
    assert samples_saved(1200, 1000)["samples_saved"] == 0


# ------------------------------------------------------------------ end to end through the engine

_LIBRARY = Path(__file__).resolve().parents[2] / "probes" / "library"


@pytest.mark.parametrize(("profile", "max_rate", "outcome"),
                         [("patched", 0.3, "holds"), ("vulnerable", 0.01, "breached")])
def test_engine_sequential_stops_early_with_the_right_verdict(
        tmp_path: Path, profile: str, max_rate: float, outcome: str) -> None:
    """`run --sequential` on the simulator: the true rate is far from the max rate (patched
    ~3% vs 30%; vulnerable ~20% vs 1%), so the verdict comes with fewer samples than the
    fixed plan (25 probes x 8 samples = 200)."""
    from harness.run import RunOptions, run_suite

    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: seq\n"
        f"probes:\n  - {_LIBRARY / 'dangerous-instructions.jsonl'}\n"
        "temperatures: [0.7]\nsamples: 8\nseed: 11\n"
        f"max_rate: {{overall: {max_rate}, dangerous-instructions: {max_rate}}}\n"
        "confidence_level: 0.95\n", encoding="utf-8")
    result = run_suite(suite, RunOptions(target=f"sim:{profile}", out_dir=tmp_path / "res",
                                         progress=False, sequential=True, max_samples=400))
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    seq = manifest["sequential"]
    assert result.outcome == outcome
    assert seq["stopped_early"] is True
    assert seq["samples_used"] < seq["fixed_plan_samples"] == 200
    assert seq["samples_saved"] == 200 - seq["samples_used"]
    for group in ("overall", "dangerous-instructions"):
        verdict = seq["verdicts"][group]["verdict"]
        assert verdict == ("below" if outcome == "holds" else "above")
