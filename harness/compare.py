"""Candidate versus baseline: per-category and overall regression verdicts.

Reads two run folders (the shell part) and compares their per-cell counts (the pure part).
Direction: difference = candidate - baseline; positive means the candidate is more harmful.

* When both runs share cells (same probe ids, contexts and temperatures) the comparison is
  paired by prompt family (a probe with its variants; without variants, the probe) over the
  shared cells: `harness.stats.paired_difference` (Rao-Scott
  design-effect adjusted Newcombe interval over per-probe differences, "rao-scott-newcombe";
  it replaced the t interval over probes, which let real regressions through as "no worse"
  when harm is rare and bursty, docs/statistics.md §5.2; exact McNemar test on probes
  discordant for "any harmful").
* When every shared probe has exactly one scored sample in each run (one cell per probe, one
  sample per cell), the pairs are binary and the paired interval is Newcombe's method 10
  (Newcombe 1998c, Stat. Med. 17:2635-2650) on the 2x2 table of (candidate, baseline)
  outcomes, with the exact McNemar test on its discordant pairs; the t interval over -1/0/+1
  differences would be a Wald interval. The probe stays the unit: a probe with several cells
  (contexts, temperatures) of one sample each is summarised by its harmful fraction and goes
  through the interval over probes, because cells of one probe are not independent pairs.
  `interval_method` in each group names the interval used.
* Otherwise the runs are treated as independent samples: Newcombe's hybrid score interval on
  the pooled counts.
* "No worse than margin" (and "better") is a claim about prompts like these, however the
  harm is spread over families: the upper limit is also a betting bound on the mean
  per-family difference (`harness.stats.paired.betting_mean_upper`, Waudby-Smith & Ramdas
  2024), valid for bursty regressions where a few families break
  (docs/statistics.md §5.3). It needs enough families: about ln(1/alpha)/margin or more.
* A paired comparison over few probes can be too wide to call; a regression on this suite's
  own prompts is then still declared when the fixed-suite (pooled) Newcombe interval lies
  above 0. "No worse" claims always need the paired, population-level interval.

Each verdict is about a non-inferiority claim with margin M: "better" (the interval is below
0), "worse" (it is above 0: a measurable regression), "no-worse-than-margin" (the increase is
below M) or "inconclusive". Intervals are two-sided at 1 - 2*alpha/m (m = the number of
groups compared; Bonferroni), so each one-sided claim has error <= alpha/m and the chance of
any wrong claim across the groups is <= alpha (statistics.md §4.3, §5).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analysis import gated_cell_groups
from harness.errors import UsageError
from harness.records import temperature_key
from harness.stats import difference_interval
from harness.stats.binomial import Interval
from harness.stats.paired import noninferiority_verdict, paired_difference
from harness.stats.requests import effective_difference_interval, request_dependence
from harness.store import load_run
from harness.tally import CellCounts, Tally, count_samples


def tally_run(run_dir: str | Path) -> tuple[dict[str, Any], Tally]:
    """Read a run folder back into its manifest and per-cell tally."""
    run = load_run(run_dir)
    tally = count_samples(run.samples_path).tally
    if tally.n == 0:
        raise UsageError(f"{run.run_dir}: the run holds no samples; nothing to compare")
    return run.manifest, tally


@dataclass(frozen=True)
class GroupComparison:
    """One group's comparison."""

    key: str
    paired: bool
    baseline_rate: float
    candidate_rate: float
    difference: float
    low: float
    high: float
    test: str
    p_value: float | None
    verdict: str
    n_baseline: int
    n_candidate: int
    n_shared_probes: int
    interval_method: str
    """Which interval produced low (and interval_high): "rao-scott-newcombe",
    "newcombe-paired-m10", "newcombe-pooled (paired t degenerate)" or "newcombe-hybrid
    (independent samples)"."""
    interval_high: float | None = None
    """The upper limit of that interval; ``high`` is the larger of it and ``population_high``
    (the bound a "no worse" or "better" verdict needs)."""
    population_high: float | None = None
    """Betting upper bound of the mean per-family difference (`betting_mean_upper`), valid
    for bursty regressions; None for unpaired groups."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _per_probe(cells: list[CellCounts]) -> dict[str, tuple[int, int]]:
    """Harmful and scored counts per prompt family: a probe with its variants.

    The family is the unit of pairing, as it is the unit of clustering in run analysis
    (docs/statistics.md §2): variants of one prompt share its harm, so counting them as
    independent pairs would make a "no worse" interval too narrow. Without variants the
    family is the probe itself.
    """
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c in cells:
        out[c.family][0] += c.n_harmful
        out[c.family][1] += c.n_scored
    return {k: (v[0], v[1]) for k, v in out.items()}


ESTIMANDS = ("population", "fixed-set")


def compare_group(key: str, base: list[CellCounts], cand: list[CellCounts], margin: float,
                  confidence_level: float, estimand: str = "population") -> GroupComparison:
    """Compare one group of cells (pure). ``estimand="fixed-set"``: the claim is about this
    suite's own prompts (`_fixed_set_group`)."""
    def cell_key(c: CellCounts) -> str:
        return f"{c.probe_id}|{c.context}|{temperature_key(c.temperature)}"

    base_cells = {cell_key(c): c for c in base}
    cand_cells = {cell_key(c): c for c in cand}
    shared = sorted(set(base_cells) & set(cand_cells))
    kb = sum(c.n_harmful for c in base)
    nb = sum(c.n_scored for c in base)
    kc = sum(c.n_harmful for c in cand)
    nc = sum(c.n_scored for c in cand)
    if nb == 0 or nc == 0:
        raise UsageError(f"group {key!r} has no scored samples in one of the runs")
    deffs = (_request_deff(base), _request_deff(cand))
    if estimand == "fixed-set":
        return _fixed_set_group(key, kb, nb, kc, nc, margin, confidence_level,
                                len(set(base_cells) & set(cand_cells)), deffs)
    pb_cells = _per_probe([base_cells[s] for s in shared])
    pc_cells = _per_probe([cand_cells[s] for s in shared])
    probes = sorted(p for p in pb_cells if pb_cells[p][1] > 0 and pc_cells.get(p, (0, 0))[1] > 0)
    if len(probes) >= 2:
        res = paired_difference([pb_cells[p][0] for p in probes], [pb_cells[p][1] for p in probes],
                                [pc_cells[p][0] for p in probes], [pc_cells[p][1] for p in probes],
                                confidence_level)
        # "No worse" (and "better") must hold for the prompt population however the harm is
        # spread over families: the upper limit is also the betting bound (paired.py).
        high = max(res.high, res.population_high)
        verdict = noninferiority_verdict(Interval(res.low, high, res.interval_method,
                                                  confidence_level), margin)
        test = f"paired by probe ({res.interval_method}; upper limit also the betting " \
               f"bound over {len(probes)} families); {res.test}"
        if verdict == "inconclusive":
            # As in run gates: "no worse" must hold for the prompt population (paired by
            # probe, above), but a regression on this suite's own prompts is shown by the
            # fixed-suite difference; given the prompts the two runs sample independently.
            fixed = effective_difference_interval(kc, nc, kb, nb, confidence_level, deffs[1],
                                                  deffs[0])
            if fixed.low > 0:
                verdict = "worse"
                test += "; regression shown on the fixed suite (Newcombe on pooled counts)"
        return GroupComparison(key, True, res.baseline_rate, res.candidate_rate, res.difference,
                               res.low, high, test, res.p_value_worse, verdict, nb, nc,
                               len(probes), res.interval_method, res.high,
                               res.population_high)
    iv = difference_interval(kc, nc, kb, nb, confidence_level)
    verdict = noninferiority_verdict(iv, margin)
    return GroupComparison(key, False, kb / nb, kc / nc, kc / nc - kb / nb, iv.low, iv.high,
                           "independent samples (Newcombe hybrid score)", None, verdict, nb, nc,
                           len(probes), "newcombe-hybrid (independent samples)", iv.high)


def _request_deff(cells: list[CellCounts]) -> float:
    """The run's request design effect over these cells (`harness.stats.requests`)."""
    return request_dependence([[*c.requests.values()] for c in cells]).design_effect


def _fixed_set_group(key: str, kb: int, nb: int, kc: int, nc: int, margin: float,
                     confidence_level: float, shared_cells: int,
                     deffs: tuple[float, float] = (1.0, 1.0)) -> GroupComparison:
    """"This suite": candidate - baseline of the pooled rates over exactly these prompts.

    Given the prompts, the two runs sample them independently, each pooled count a sum of
    independent Bernoulli draws with the cells' own rates (Poisson-binomial); Newcombe's
    hybrid score interval (1998b, method 10) for the difference of two independent
    proportions takes the binomial variance, which is at least the Poisson-binomial one
    (Hoeffding 1956), so heterogeneous cells (a few prompts carrying a regression) make it
    conservative, not wrong. It says nothing about prompts like these: a regression on
    prompts the suite does not contain is not measured (docs/statistics.md §5.4). Clustered
    on the request: each run's counts at its request design effect (``deffs``: baseline,
    candidate).
    """
    iv = effective_difference_interval(kc, nc, kb, nb, confidence_level, deffs[1], deffs[0])
    return GroupComparison(key, False, kb / nb, kc / nc, kc / nc - kb / nb, iv.low, iv.high,
                           "this suite's prompts (fixed-set; Newcombe hybrid score on pooled "
                           f"counts over {shared_cells} shared cells)", None,
                           noninferiority_verdict(iv, margin), nb, nc, 0,
                           "newcombe-hybrid (fixed-set)", iv.high)


def compare_tallies(base: Tally, cand: Tally, margin: float, confidence_level: float = 0.95,
                    gated: Collection[str] | None = None, estimand: str = "population",
                    ) -> dict[str, Any]:
    """Overall and per-category comparisons with a Bonferroni split across groups (pure).

    ``gated`` names the groups the runs gate (the suites' ``max_rate`` keys): only they decide
    the outcome and share the Bonferroni split, as in run gating; the other groups are
    compared at the same level and shown for information (``gated`` false). None or empty:
    every group decides (the behaviour without suites to read). ``estimand``: "population"
    (prompts like these, paired by family; default) or "fixed-set" (this suite's prompts).
    """
    if not 0 <= margin < 1:
        raise UsageError(f"--margin must be a rate in [0, 1), e.g. 0.01; got {margin}")
    if estimand not in ESTIMANDS:
        raise UsageError(f"--estimand must be one of {', '.join(ESTIMANDS)}; got {estimand!r}")
    bgroups = gated_cell_groups(base.cells.values())
    cgroups = gated_cell_groups(cand.cells.values())
    groups = {k: (bgroups[k], cgroups[k]) for k in bgroups
              if k in cgroups and bgroups[k] and cgroups[k]}
    deciding = [k for k in groups if gated and k in gated] or list(groups)
    m = max(len(deciding), 1)
    alpha = 1 - confidence_level
    level = 1 - 2 * alpha / m
    results = [compare_group(k, b, c, margin, level, estimand) for k, (b, c) in groups.items()]
    verdicts = [r.verdict for r in results if r.key in deciding]
    if "worse" in verdicts:
        outcome = "regression"
    elif "inconclusive" in verdicts:
        outcome = "inconclusive"
    else:
        outcome = "no-regression"
    return {"outcome": outcome, "margin": margin, "estimand": estimand,
            "confidence_level": confidence_level,
            "interval_level": level, "correction": f"bonferroni over {m} groups",
            "deciding_groups": deciding,
            "groups": [{**r.to_dict(), "gated": r.key in deciding} for r in results]}


EXIT = {"no-regression": 0, "regression": 1, "inconclusive": 3}


def _ids(ids: set[str], limit: int = 5) -> str:
    shown = sorted(ids)[:limit]
    return ", ".join(shown) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def comparability_problems(baseline: Mapping[str, Any], base: Tally,
                           candidate: Mapping[str, Any], cand: Tally) -> list[str]:
    """Why two runs do not measure the same thing (pure): a different suite, or a different
    set of probes. Empty when they are comparable.

    A comparison of different probe sets can show a "regression" (or hide one) that is only
    the change of prompts; CI must not be fooled by it, so `compare_runs` refuses unless
    asked (`allow_different`).
    """
    problems = []
    bs = (baseline.get("suite") or {}).get("name")
    cs = (candidate.get("suite") or {}).get("name")
    if bs != cs:
        problems.append(f"the runs are of different suites: baseline {bs!r}, candidate {cs!r}")
    bp = {c.probe_id for c in base.cells.values()}
    cp = {c.probe_id for c in cand.cells.values()}
    if bp != cp:
        text = f"the runs sampled different probe sets ({len(bp)} vs {len(cp)} probes"
        if bp - cp:
            text += f"; only in the baseline: {_ids(bp - cp)}"
        if cp - bp:
            text += f"; only in the candidate: {_ids(cp - bp)}"
        problems.append(text + ")")
    return problems


def compare_runs(baseline_dir: str | Path, candidate_dir: str | Path, margin: float,
                 confidence_level: float | None = None, *, allow_different: bool = False,
                 estimand: str = "population") -> dict[str, Any]:
    """Compare two run folders; the confidence level defaults to the baseline's.

    Raises UsageError for a run compared against itself (it can only show "no
    regression") and, unless `allow_different`, for runs of different suites or probe sets.
    """
    bm, bt = tally_run(baseline_dir)
    cm, ct = tally_run(candidate_dir)
    if Path(baseline_dir).resolve() == Path(candidate_dir).resolve() or \
            (bm.get("run_id") and bm.get("run_id") == cm.get("run_id")):
        raise UsageError(f"baseline and candidate are the same run ({bm.get('run_id')}): a run "
                         "compared against itself always shows no regression; pass the "
                         "baseline's run folder and the candidate's")
    problems = comparability_problems(bm, bt, cm, ct)
    if problems and not allow_different:
        raise UsageError("cannot compare " + f"{baseline_dir} and {candidate_dir}: "
                         + "; ".join(problems) + ". Run the candidate with the baseline's suite, "
                         "or pass --allow-different to compare the shared probes anyway")
    conf = confidence_level or float(bm.get("settings", {}).get("confidence_level", 0.95))
    # Decide on the groups the runs gate (either suite's max_rate keys), as run gating does.
    gated = set(bm.get("settings", {}).get("max_rate") or {}) | \
        set(cm.get("settings", {}).get("max_rate") or {})
    result = compare_tallies(bt, ct, margin, conf, gated=gated, estimand=estimand)
    result["baseline"] = {"run_id": bm.get("run_id"), "target": bm.get("target", {}).get("spec"),
                          "suite": bm.get("suite", {}).get("name")}
    result["candidate"] = {"run_id": cm.get("run_id"), "target": cm.get("target", {}).get("spec"),
                           "suite": cm.get("suite", {}).get("name")}
    result["exit_code"] = EXIT[result["outcome"]]
    result["differences"] = problems
    return result


_CLAIMS = {"population": "claims about prompts like these",
           "fixed-set": "claims about this suite's own prompts only"}


def render_compare(result: Mapping[str, Any]) -> str:
    """Markdown report of a comparison (no output text)."""
    from harness.report import pct

    b, c = result["baseline"], result["candidate"]
    lines = [f"# Compare: candidate {c['run_id']} vs baseline {b['run_id']}", "",
             f"**Outcome: {result['outcome'].upper()}** (margin {pct(result['margin'])}; "
             f"{_CLAIMS[result.get('estimand', 'population')]}; "
             f"each interval at {result['interval_level']:.4g} two-sided, "
             f"{result['correction']})", "",
             "| group | baseline | candidate | difference | interval | test | verdict |",
             "|---|---|---|---|---|---|---|"]
    if result.get("differences"):
        lines[2:2] = ["**The runs differ (compared with --allow-different):** "
                      + "; ".join(result["differences"]) + ".", ""]
    for g in result["groups"]:
        key = g["key"] if g.get("gated", True) else f"{g['key']} (not gated)"
        lines.append(f"| {key} | {pct(g['baseline_rate'])} | {pct(g['candidate_rate'])} | "
                     f"{100 * g['difference']:+.2f} pp | {100 * g['low']:+.2f} to "
                     f"{100 * g['high']:+.2f} pp | {g['test']} | {g['verdict']} |")
    lines += ["", "Difference = candidate - baseline; positive means the candidate produced "
              "harmful output more often. 'worse' is a measurable regression; "
              "'no-worse-than-margin' means any increase is smaller than the margin.", ""]
    return "\n".join(lines)
