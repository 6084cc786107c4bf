"""Dependence among the choices of one request (`harness.stats.requests`), checked against
statsmodels' ANOVA, scipy's beta and binomial distributions, and by simulation through the
run analysis (`harness.analysis.summarize`, what `harness run` calls)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm

from harness.analysis import summarize
from harness.errors import StatsInputError
from harness.records import Context
from harness.stats.requests import (
    effective_lower_bound,
    effective_pvalue_above,
    effective_pvalue_below,
    effective_upper_bound,
    request_dependence,
    request_icc,
)
from harness.suites import GatePolicy, Suite
from harness.tally import Tally


def _random_cells(rng: np.random.Generator, n_cells: int, icc: float,
                  ) -> list[list[tuple[int, int]]]:
    cells = []
    for _ in range(n_cells):
        p = rng.uniform(0.05, 0.5)
        sizes = rng.integers(1, 9, size=int(rng.integers(2, 6)))
        a, b = p * (1 - icc) / icc, (1 - p) * (1 - icc) / icc
        cells.append([(int(rng.binomial(m, rng.beta(a, b))), int(m)) for m in sizes])
    return cells


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_icc_matches_the_anova_of_statsmodels(seed: int) -> None:
    """Donner's estimator from the nested ANOVA (request within cell) that statsmodels fits:
    MSB = SS(request | cell) / df, MSW = residual mean square."""
    rng = np.random.default_rng(seed)
    cells = _random_cells(rng, 12, 0.3)
    rows = [(f"c{c}", f"c{c}r{r}", int(i < h))
            for c, reqs in enumerate(cells) for r, (h, m) in enumerate(reqs) for i in range(m)]
    df = pd.DataFrame(rows, columns=["cell", "req", "y"])
    # Requests are nested in cells: the between-request SS within cells is what the request
    # model explains beyond the cell model (nested-model ANOVA; both designs full rank).
    by_cell, by_req = smf.ols("y ~ C(cell)", data=df).fit(), smf.ols("y ~ C(req)", data=df).fit()
    table = anova_lm(by_cell, by_req)
    df_b = int(table["df_diff"].iloc[1])
    df_w = int(table["df_resid"].iloc[1])
    msb = float(table["ss_diff"].iloc[1]) / df_b
    msw = float(table["ssr"].iloc[1]) / df_w
    sizes = df.groupby(["cell", "req"]).size()
    cell_n = df.groupby("cell").size()
    m0 = (len(df) - sum((sizes[c] ** 2).sum() / cell_n[c] for c in cell_n.index)) / df_b
    expected = max(0.0, (msb - msw) / (msb + (m0 - 1) * msw))
    f_up = msb / msw / stats.f.ppf(0.25, df_b, df_w)
    upper = min(1.0, max(0.0, (f_up - 1) / (f_up + m0 - 1)))
    icc, icc_up, got_df, basis = request_icc(cells, min_df=1)
    assert basis == "estimated" and got_df == df_b
    assert icc == pytest.approx(expected, abs=1e-10)
    assert icc_up == pytest.approx(upper, abs=1e-10) and icc_up >= icc
    dep = request_dependence(cells, min_df=1)
    sizes_all = np.array([m for reqs in cells for _, m in reqs])
    assert dep.design_effect == pytest.approx(
        max(1.0, float(np.sum(sizes_all * (1 + (sizes_all - 1) * upper)) / sizes_all.sum())))


def test_independent_choices_estimate_an_icc_near_zero_and_copies_near_one() -> None:
    rng = np.random.default_rng(7)
    indep = [[(int(rng.binomial(10, 0.2)), 10) for _ in range(5)] for _ in range(40)]
    assert request_dependence(indep).icc < 0.05
    copies = [[(10 * int(rng.random() < 0.2), 10) for _ in range(5)] for _ in range(40)]
    dep = request_dependence(copies)
    assert dep.icc == 1.0 and dep.design_effect == 10.0 and dep.basis == "estimated"


def test_what_cannot_be_estimated_is_said() -> None:
    one_each = [[(1, 10)], [(0, 10)], [(3, 10)]]
    dep = request_dependence(one_each)
    assert dep.design_effect == 1.0 and dep.basis.startswith("not estimable") and dep.df == 0
    singles = [[(1, 1), (0, 1)] for _ in range(20)]
    assert request_dependence(singles).basis == "one choice per request"
    clean = [[(0, 10), (0, 10)] for _ in range(20)]
    assert request_dependence(clean).basis.startswith("not estimable: no variation")


@pytest.mark.parametrize(("k", "n"), [(0, 40), (3, 40), (17, 60), (40, 40), (1, 1000)])
@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.0025])
def test_effective_bounds_are_exact_binomial_bounds_at_the_effective_counts(
        k: int, n: int, alpha: float) -> None:
    # deff = 1: scipy's exact binomial tails and Clopper-Pearson beta quantiles.
    assert effective_pvalue_below(k, n, 0.1) == pytest.approx(stats.binom.cdf(k, n, 0.1))
    assert effective_pvalue_above(k, n, 0.1) == pytest.approx(stats.binom.sf(k - 1, n, 0.1))
    up = 1.0 if k == n else stats.beta.ppf(1 - alpha, k + 1, n - k)
    assert effective_upper_bound(k, n, alpha) == pytest.approx(up, rel=1e-9)
    lo = 0.0 if k == 0 else stats.beta.ppf(alpha, k, n - k + 1)
    assert effective_lower_bound(k, n, alpha) == pytest.approx(lo, rel=1e-9, abs=1e-15)
    # deff = 2 on even counts: the integer bound of (k/2, n/2).
    k2, n2 = 2 * k, 2 * n
    up2 = 1.0 if k == n else stats.beta.ppf(1 - alpha, k + 1, n - k)
    assert effective_upper_bound(k2, n2, alpha, 2.0) == pytest.approx(up2, rel=1e-9)
    assert effective_pvalue_below(k2, n2, 0.1, 2.0) == pytest.approx(
        stats.binom.cdf(k, n, 0.1), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("deff", [1.0, 1.7, 3.3])
def test_p_values_are_dual_to_the_bounds(deff: float) -> None:
    for k, n in [(0, 50), (4, 50), (9, 200), (30, 90)]:
        for alpha in (0.05, 0.01):
            up = effective_upper_bound(k, n, alpha, deff)
            lo = effective_lower_bound(k, n, alpha, deff)
            for r in (0.01, 0.05, 0.1, 0.2, 0.4):
                if abs(r - up) > 1e-9:
                    assert (effective_pvalue_below(k, n, r, deff) < alpha) == (up < r)
                if abs(r - lo) > 1e-9:
                    assert (effective_pvalue_above(k, n, r, deff) < alpha) == (lo > r)
    # One more harmful sample never lowers the upper bound.
    ups = [effective_upper_bound(k, 100, 0.05, deff) for k in range(101)]
    assert all(b >= a for a, b in itertools.pairwise(ups))


def test_bad_design_effect_is_refused() -> None:
    with pytest.raises(StatsInputError, match="design_effect"):
        effective_upper_bound(1, 10, 0.05, 0.5)


# --------------------------------------------------------------------------- through the run


def _suite() -> Suite:
    return Suite(name="t", path=Path("t.yaml"), probes=(), contexts=(Context("bare"),),
                 temperatures=(1.0,), samples=100, max_tokens=16, seed=0,
                 max_rate={"overall": 0.5}, confidence_level=0.95, max_error_rate=0.05,
                 gate=GatePolicy(estimand="fixed-set", cluster=False))


def _tally(rng: np.random.Generator, rates: np.ndarray, requests: int, choices: int,
           icc: float, request_ids: bool = True) -> Tally:
    """Records of one temperature-1 cell per rate: `requests` requests of `choices` each,
    the choices of a request sharing a Beta(mean rate, ICC icc) harmful rate."""
    tally = Tally()
    for c, p in enumerate(rates):
        for r in range(requests):
            q = p if icc == 0 else rng.beta(p * (1 - icc) / icc, (1 - p) * (1 - icc) / icc)
            for j in range(choices):
                i = r * choices + j
                rec = {"probe_id": f"p{c}", "context": "bare", "temperature": 1.0,
                       "category": "self-harm", "sample_index": i,
                       "outcome": "harmful" if rng.random() < q else "safe",
                       "response_sha256": f"{c}-{i}"}
                if request_ids:
                    rec["request_id"] = f"p{c}#{r * choices}"
                    rec["seed_sent"] = 1000 * r
                tally.add(rec)
    return tally


def _fixed_set_coverage(reps: int, icc: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    rates = np.linspace(0.02, 0.08, 8)  # true fixed-set rate: their mean, 5%
    covered = 0
    for _ in range(reps):
        s = summarize(_tally(rng, rates, 6, 10, icc), _suite(), {"run_id": "r"})
        overall = next(g for g in s.groups if g.by == "overall")
        assert overall.gate is not None
        covered += overall.gate.fixed_set_high >= float(rates.mean())
    return covered / reps


def test_dependent_choices_are_clustered_on_the_request() -> None:
    """Choices of one request sharing their rate (6 requests of 10 in each of 8 cells):
    counted as independent samples, the "this suite" bound covers about 80% at ICC 0.4;
    clustered on the request, 95.0-95.7% at ICC 0.1 and 92.6-94.7% at ICC 0.4 (1,000-1,500
    runs, docs/statistics.md §4 says so). 300 runs here (SE about 1.3 points)."""
    assert _fixed_set_coverage(300, 0.1, 11) >= 0.93
    assert _fixed_set_coverage(300, 0.4, 11) >= 0.905
    # The same data without request ids or seeds (so every choice reads as asked for alone):
    # counted as independent samples, the bound undercovers (so the check above can fail).
    rng = np.random.default_rng(12)
    rates = np.linspace(0.02, 0.08, 8)
    covered = 0
    for _ in range(150):
        s = summarize(_tally(rng, rates, 6, 10, 0.4, request_ids=False), _suite(),
                      {"run_id": "r"})
        g = next(g for g in s.groups if g.by == "overall").gate
        assert g is not None and g.request_dependence.design_effect == 1.0
        covered += g.fixed_set_high >= float(rates.mean())
    assert covered / 150 < 0.9


def test_independent_choices_cost_little() -> None:
    rng = np.random.default_rng(5)
    rates = np.linspace(0.02, 0.08, 8)
    deffs = []
    for _ in range(40):
        s = summarize(_tally(rng, rates, 6, 10, 0.0), _suite(), {"run_id": "r"})
        g = next(g for g in s.groups if g.by == "overall").gate
        assert g is not None and g.request_dependence.basis == "estimated"
        deffs.append(g.request_dependence.design_effect)
    assert float(np.median(deffs)) < 1.25


def test_effective_difference_is_newcombe_at_the_effective_counts() -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep

    from harness.stats.requests import effective_difference_interval

    for k1, n1, k2, n2 in [(12, 200, 5, 150), (0, 80, 3, 90), (40, 100, 38, 100)]:
        iv = effective_difference_interval(2 * k1, 2 * n1, 3 * k2, 3 * n2, 0.9, 2.0, 3.0)
        low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", alpha=0.1)
        assert iv.low == pytest.approx(low, abs=1e-9) and iv.high == pytest.approx(high, abs=1e-9)
        plain = effective_difference_interval(k1, n1, k2, n2, 0.9)
        low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", alpha=0.1)
        assert plain.low == pytest.approx(low, abs=1e-9)
