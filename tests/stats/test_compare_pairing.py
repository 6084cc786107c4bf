"""`harness.compare`: which paired interval is used, checked against independent computation.

(Here rather than tests/test_compare.py: that basename is taken by tests/cli/test_compare.py
and neither folder is a package, so pytest cannot collect both.)

One sample per probe in each run gives binary pairs: Newcombe's paired method 10 (Newcombe
1998c, Stat. Med. 17:2635-2650) with the exact McNemar test. Several samples per probe keep
the interval over per-probe differences, now the Rao-Scott adjusted Newcombe interval (its
formula is checked against statsmodels/scipy pieces in tests/stats/test_paired.py; here we
check that compare passes the per-probe counts to it). The method-10 reference values are
built from scipy/statsmodels pieces, not from harness.stats.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from harness.compare import compare_group, compare_runs, compare_tallies
from harness.run import RunOptions, run_suite
from harness.stats import rao_scott_paired_interval
from harness.tally import CellCounts, Tally

# The compare JSON keys other tools read (DESIGN.md: add fields freely, never drop one).
GROUP_KEYS = {"key", "paired", "baseline_rate", "candidate_rate", "difference", "low", "high",
              "test", "p_value", "verdict", "n_baseline", "n_candidate", "n_shared_probes"}


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    # scipy's Wilson limits (binomtest.proportion_ci), a different code path from ours.
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=2 * stats.norm.cdf(z) - 1,
                                             method="wilson")
    return float(ci.low), float(ci.high)


def _newcombe_m10(a: int, b: int, c: int, d: int, level: float) -> tuple[float, float]:
    """Newcombe (1998c) method 10 for p1 - p2, p1 = (a+b)/n, p2 = (a+c)/n."""
    n = a + b + c + d
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson(a + b, n, z)
    l2, u2 = _wilson(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    num = 0.0 if margins == 0 else (cross if cross < 0 else max(cross - n / 2, 0.0))
    phi = 0.0 if margins == 0 else num / math.sqrt(margins)
    lo = p1 - p2 - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    hi = p1 - p2 + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return max(-1.0, lo), min(1.0, hi)


def _cell(probe: str, k: int, n: int, *, context: str = "bare", temperature: float = 0.0,
          category: str = "self-harm", family: str | None = None) -> CellCounts:
    return CellCounts(probe, family or probe, None if family is None else family, "",
                      category, "high", context, temperature, n=n, n_harmful=k, n_safe=n - k)


def _binary_runs(seed: int, probes: int, p_base: float, p_cand: float,
                 ) -> tuple[list[CellCounts], list[CellCounts], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xb = rng.random(probes) < p_base
    xc = rng.random(probes) < p_cand
    base = [_cell(f"p{j}", int(xb[j]), 1) for j in range(probes)]
    cand = [_cell(f"p{j}", int(xc[j]), 1) for j in range(probes)]
    return base, cand, xb, xc


def test_one_sample_per_probe_uses_newcombe_m10_and_mcnemar() -> None:
    base, cand, xb, xc = _binary_runs(5, 80, 0.35, 0.10)
    level = 0.9
    g = compare_group("self-harm", base, cand, 0.02, level)
    a, b = int(np.sum(xc & xb)), int(np.sum(xc & ~xb))
    c, d = int(np.sum(~xc & xb)), int(np.sum(~xc & ~xb))
    lo, hi = _newcombe_m10(a, b, c, d, level)
    assert g.paired and g.interval_method == "newcombe-paired-m10"
    assert g.difference == pytest.approx((b - c) / 80)
    assert (g.low, g.interval_high) == pytest.approx((lo, hi), abs=1e-9)
    # One-sided exact McNemar p-value for "candidate worse": P(X >= b), X ~ Bin(b + c, 1/2).
    assert g.p_value == pytest.approx(stats.binomtest(b, b + c, 0.5, "greater").pvalue)
    assert "mcnemar-exact" in g.test and "newcombe-paired-m10" in g.test
    assert mcnemar([[a, b], [c, d]], exact=True).pvalue < 0.05
    assert g.verdict == "better" and hi < 0
    assert g.n_shared_probes == 80
    # The verdict's upper limit is also the betting bound over the 80 probe differences.
    assert g.population_high is not None and g.interval_high is not None
    assert g.high == max(g.interval_high, g.population_high) and g.high < 0


def test_binary_regression_is_worse() -> None:
    base, cand, xb, xc = _binary_runs(6, 60, 0.05, 0.40)
    g = compare_group("overall", base, cand, 0.02, 0.95)
    b, c = int(np.sum(xc & ~xb)), int(np.sum(~xc & xb))
    lo, _ = _newcombe_m10(int(np.sum(xc & xb)), b, c, int(np.sum(~xc & ~xb)), 0.95)
    assert g.interval_method == "newcombe-paired-m10"
    assert g.low == pytest.approx(lo, abs=1e-9) and lo > 0
    assert g.verdict == "worse"


def test_no_discordant_pairs_is_not_degenerate() -> None:
    # Identical binary outcomes: no discordant pair, the t interval cannot be formed (sd = 0);
    # method 10 still gives a proper interval that uses the pairing.
    base, _, _, _ = _binary_runs(7, 30, 0.2, 0.2)
    g = compare_group("overall", base, base, 0.01, 0.9)
    assert g.interval_method == "newcombe-paired-m10"
    assert g.low < 0 < g.high and g.verdict == "inconclusive"
    a = sum(c.n_harmful for c in base)
    assert (g.low, g.interval_high) == pytest.approx(_newcombe_m10(a, 0, 0, 30 - a, 0.9), abs=1e-9)


def test_many_samples_per_probe_use_rao_scott_newcombe() -> None:
    rng = np.random.default_rng(8)
    kb, kc = rng.binomial(20, 0.3, 12), rng.binomial(20, 0.2, 12)
    base = [_cell(f"p{j}", int(kb[j]), 20) for j in range(12)]
    cand = [_cell(f"p{j}", int(kc[j]), 20) for j in range(12)]
    g = compare_group("overall", base, cand, 0.02, 0.9)
    ref = rao_scott_paired_interval(kb, np.full(12, 20), kc, np.full(12, 20), 0.9)
    assert g.interval_method == "rao-scott-newcombe" and "rao-scott-newcombe" in g.test
    assert (g.low, g.interval_high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert g.difference == pytest.approx(np.mean(kc / 20 - kb / 20))


def test_one_sample_per_cell_but_several_cells_per_probe_stays_clustered() -> None:
    # Two contexts x one sample: each probe has two correlated binary outcomes per run, so the
    # probe (its harmful fraction) is the unit and the interval over probes is used.
    rng = np.random.default_rng(9)
    base, cand = [], []
    for j in range(15):
        for ctx in ("bare", "guarded"):
            base.append(_cell(f"p{j}", int(rng.random() < 0.4), 1, context=ctx))
            cand.append(_cell(f"p{j}", int(rng.random() < 0.2), 1, context=ctx))
    g = compare_group("overall", base, cand, 0.02, 0.9)
    assert g.interval_method == "rao-scott-newcombe" and g.n_shared_probes == 15
    per: dict[str, list[list[int]]] = {}
    for cb, cc in zip(base, cand, strict=True):
        per.setdefault(cb.probe_id, [[], []])
        per[cb.probe_id][0].append(cb.n_harmful)
        per[cb.probe_id][1].append(cc.n_harmful)
    kb = np.array([sum(v[0]) for v in per.values()])
    kc = np.array([sum(v[1]) for v in per.values()])
    ref = rao_scott_paired_interval(kb, np.full(15, 2), kc, np.full(15, 2), 0.9)
    assert (g.low, g.interval_high) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_variants_of_one_prompt_are_paired_as_one_family() -> None:
    # 6 incident prompts x 5 variants each: the unit is the family (prompt + its variants),
    # as in run analysis; 30 variant "probes" would overstate the independent evidence.
    rng = np.random.default_rng(10)
    base, cand = [], []
    kb, kc = np.zeros(6, dtype=int), np.zeros(6, dtype=int)
    for f in range(6):
        for v in range(5):
            b, c = int(rng.binomial(10, 0.3)), int(rng.binomial(10, 0.25))
            kb[f] += b
            kc[f] += c
            base.append(_cell(f"f{f}-v{v}", b, 10, family=f"f{f}"))
            cand.append(_cell(f"f{f}-v{v}", c, 10, family=f"f{f}"))
    g = compare_group("overall", base, cand, 0.02, 0.9)
    assert g.n_shared_probes == 6
    ref = rao_scott_paired_interval(kb, np.full(6, 50), kc, np.full(6, 50), 0.9)
    assert (g.low, g.interval_high) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_unpaired_and_output_contract() -> None:
    g = compare_group("self-harm", [_cell("a", 4, 200)], [_cell("b", 15, 200)], 0.01, 0.9)
    assert not g.paired and g.interval_method == "newcombe-hybrid (independent samples)"
    t = Tally()
    rng = np.random.default_rng(10)
    for j in range(40):
        for cat in ("self-harm", "targeted-harm"):
            t.add({"probe_id": f"{cat}-{j}", "category": cat, "context": "bare",
                   "temperature": 0.0, "outcome": "harmful" if rng.random() < 0.2 else "safe"})
    res = compare_tallies(t, t, margin=0.05, confidence_level=0.95)
    assert [g["key"] for g in res["groups"]] == ["overall", "self-harm", "targeted-harm"]
    for grp in res["groups"]:
        assert set(grp) >= GROUP_KEYS and grp["interval_method"] == "newcombe-paired-m10"
    json.dumps(res)  # JSON-ready


def test_compare_runs_with_one_sample_per_probe(tmp_path: Path) -> None:
    """Real simulator runs with one context, one temperature and one sample per probe."""
    from harness.settings import Overrides

    root = Path(__file__).resolve().parents[2]
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"""name: one-sample
probes: [{root / "probes" / "demo.jsonl"}]
contexts:
  - name: bare
temperatures: [1.0]
samples: 1
seed: 5
max_rate: {{overall: 0.05}}
""", encoding="utf-8")
    runs = {}
    for target in ("sim:vulnerable", "sim:patched"):
        res = run_suite(suite, RunOptions(target=target, out_dir=tmp_path / "out",
                                          progress=False, use_env=False,
                                          overrides=Overrides(seed=5)))
        runs[target] = res.run_dir
    result = compare_runs(runs["sim:vulnerable"], runs["sim:patched"], margin=0.05)
    overall = next(g for g in result["groups"] if g["key"] == "overall")
    assert overall["paired"] and overall["interval_method"] == "newcombe-paired-m10"

    # Independent reference straight from samples.jsonl: one outcome per harm probe per run.
    def outcomes(run_dir: Path) -> dict[str, bool]:
        out = {}
        for line in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec["category"] != "over-refusal" and rec["outcome"] != "error":
                out[rec["probe_id"]] = rec["outcome"] == "harmful"
        return out

    ob, oc = outcomes(runs["sim:vulnerable"]), outcomes(runs["sim:patched"])
    shared = sorted(set(ob) & set(oc))
    xb = np.array([ob[p] for p in shared])
    xc = np.array([oc[p] for p in shared])
    lo, hi = _newcombe_m10(int(np.sum(xc & xb)), int(np.sum(xc & ~xb)),
                           int(np.sum(~xc & xb)), int(np.sum(~xc & ~xb)),
                           result["interval_level"])
    assert overall["n_shared_probes"] == len(shared)
    assert overall["difference"] == pytest.approx(xc.mean() - xb.mean())
    assert (overall["low"], overall["interval_high"]) == pytest.approx((lo, hi), abs=1e-9)
    assert overall["high"] == max(hi, overall["population_high"])
