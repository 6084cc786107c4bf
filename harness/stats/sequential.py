"""Anytime-valid confidence sequences for a harmful rate, and the sequential gate.

A confidence sequence (CS) is a sequence of intervals C_1, C_2, ... with
``P(for all t: p in C_t) >= 1 - alpha``: it stays valid however often it is looked at and
whenever the looking stops (optional stopping / continuation). A fixed-n interval recomputed
every night does not have this property (Armitage, McPherson & Rowe 1969; 14 looks at nominal
5% give about 22% false alarms).

Construction used here: the conjugate beta mixture of Bernoulli likelihood ratios, tuned as in
the sub-Bernoulli beta-binomial mixture of Howard, Ramdas, McAuliffe & Sekhon (2021),
"Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist. 49(2):1055-1080,
Proposition 7 (beta-binomial mixture) with ``g = p, h = 1 - p``, and the tuning of the mixing
precision from their eq. (3.13) / confseq ``uniform_boundaries.h``.

For a candidate rate p, with S harmful among t samples,

    M_t(p) = integral over q of  (q / p)^S ((1 - q) / (1 - p))^(t - S)  Beta(q; a, b) dq
           = B(a + S, b + t - S) / B(a, b) / (p^S (1 - p)^(t - S)),

with the prior ``Beta(a, b)`` centred at p: ``a = r / (1 - p)``, ``b = r / p``, so
``a + b = r / (p (1 - p))``. ``M_t(p)`` is a nonnegative martingale with ``M_0 = 1`` when the
true rate is p, so by Ville's inequality ``P_p(exists t: M_t(p) >= 1/alpha) <= alpha`` and
``C_t = {p : M_t(p) < 1/alpha}`` is a (1 - alpha) CS. The precision r only shapes where the CS
is tightest; Howard et al. choose the normal-mixture precision
``rho = v_opt / (2 ln(1/alpha) + ln(1 + 2 ln(1/alpha)))`` that minimises the boundary at
intrinsic time ``v_opt = p (1 - p) t_opt`` and set ``r = max(rho - p (1 - p), 1e-3 p (1 - p))``.

Why it is valid for a fixed prompt panel (estimand E1, the fixed-suite rate): conditional on the
prompts, the harmful count of one look (one night, one round) that samples every cell equally is
Poisson-binomial with mean n p; its moment generating function is dominated by Binomial(n, p)
(Hoeffding 1956), so ``M_t(p)`` evaluated at look boundaries is a nonnegative supermartingale
and Ville's inequality still applies. Evaluate the CS only at look boundaries.

It is *not* valid for "prompts like these" (E2): samples of one probe family are correlated,
and a pooled sequence treats 1,000 samples of 30 probes as 1,000 independent draws (false
"below" 15-16% at nominal 5% with an intraclass correlation of 0.3). The sequential gate
(`sequential_gate`) therefore decides "below" with the run gate's clustered bound over probe
families (`harness.stats.clustered`), spending alpha evenly over the looks fixed before
sampling (`spending_weights`, `look_level`), and keeps the CS for the fixed-suite "above"
claim, which is what the run gate's breach on the fixed suite claims too.

Everything here is pure: counts in, numbers out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from harness.errors import StatsInputError
from harness.records import Verdict
from harness.stats._checks import check_confidence, check_count, check_rate
from harness.stats.clustered import population_upper_bound

# Re-exported: the mixture confidence sequence lives in its own module.
from harness.stats.mixture_cs import SequenceBound as SequenceBound
from harness.stats.mixture_cs import confidence_sequence as confidence_sequence
from harness.stats.mixture_cs import confidence_sequence_path as confidence_sequence_path
from harness.stats.mixture_cs import ever_above as ever_above
from harness.stats.mixture_cs import log_mixture_martingale as log_mixture_martingale
from harness.stats.mixture_cs import mixture_precision as mixture_precision

Action = Literal["stop", "continue"]

# ----------------------------------------------------------------------------- sequential gate


def spending_weights(planned_looks: int) -> np.ndarray:
    """Share of alpha spent on "below" at each planned look: 1 / planned_looks each.

    Bonferroni across the looks (a union bound; in the language of group-sequential designs
    a linear alpha-spending function, Lan & DeMets 1983, Biometrika 70:659-663, without the
    normal approximation that lets those designs spend less): whichever look the run stops
    at, the chance of a wrong "below" is at most alpha. Measured against front-loaded,
    back-loaded and plan-point-heavy spending (bench/decision_tables.py), the even split was
    never worse than 0.1x the fixed plan in mean samples and is the simplest to state.
    """
    if planned_looks < 1:
        raise StatsInputError(f"planned_looks must be >= 1, got {planned_looks!r}")
    return np.full(planned_looks, 1.0 / planned_looks)


def look_level(alpha: float, look: int, planned_looks: int) -> float:
    """The "below" level of look number ``look`` (1-based) of ``planned_looks``.

    Looks beyond the plan (a resumed or extended run) get nothing: they cannot claim
    "below" without breaking the union bound.
    """
    if look < 1:
        raise StatsInputError(f"looks start at 1, got {look!r}")
    if look > planned_looks:
        return 0.0
    return float(alpha * spending_weights(planned_looks)[look - 1])


def population_upper(k_per_cluster: Sequence[int], n_per_cluster: Sequence[int],
                     alpha: float) -> float:
    """The fixed-sample "prompts like these" upper bound of the run gate at one-sided ``alpha``.

    The same clustered bound `harness.gating` applies to a fixed-size run (probe families as
    clusters; `harness.stats.clustered`); the sequential gate spends its alpha over looks.
    """
    if alpha <= 0.0:
        return 1.0
    return population_upper_bound(k_per_cluster, n_per_cluster, alpha).high


@dataclass(frozen=True)
class GroupDecision:
    """The sequential verdict of one gated group at the current look.

    ``high`` is the "prompts like these" upper bound at this look's spent level (running
    minimum over looks: still valid, the union bound covers every look at once); ``low`` the
    fixed-suite lower bound of the pooled confidence sequence (running maximum).
    """

    key: str
    n: int
    n_harmful: int
    max_rate: float
    low: float
    high: float
    verdict: Verdict
    confidence_level: float
    """Per-group level after the Bonferroni split across gated groups."""
    n_clusters: int = 1
    look: int = 1
    planned_looks: int = 1
    below_alpha: float = 0.0
    """The one-sided level the "below" test spent at this look."""

    @property
    def settled(self) -> bool:
        """True when the bound has decided below or above."""
        return self.verdict != "inconclusive"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "key": self.key,
            "n": self.n,
            "n_harmful": self.n_harmful,
            "rate": self.n_harmful / self.n if self.n else None,
            "max_rate": self.max_rate,
            "cs_low": self.low,
            "cs_high": self.high,
            "verdict": self.verdict,
            "confidence_level": self.confidence_level,
            "n_clusters": self.n_clusters,
            "look": self.look,
            "planned_looks": self.planned_looks,
            "below_alpha": self.below_alpha,
        }


SEQUENTIAL_METHOD = ("below: clustered population bound spent over the planned looks; "
                     "above: beta-binomial mixture confidence sequence (this suite)")


@dataclass(frozen=True)
class SequentialDecision:
    """What the engine should do after a round: stop (with a verdict) or continue.

    ``verdict`` is the overall one: ``above`` if any group is above, ``below`` if all are
    below, else ``inconclusive`` (only when stopping because the budget ran out, or while
    continuing).
    """

    action: Action
    verdict: Verdict
    groups: tuple[GroupDecision, ...]
    reason: str
    confidence_level: float
    method: str = SEQUENTIAL_METHOD
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stop(self) -> bool:
        return self.action == "stop"

    def group(self, key: str) -> GroupDecision:
        """The decision of one group by key."""
        for g in self.groups:
            if g.key == key:
                return g
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "action": self.action,
            "verdict": self.verdict,
            "reason": self.reason,
            "confidence_level": self.confidence_level,
            "method": self.method,
            "groups": [g.to_dict() for g in self.groups],
        }


def _group_decision(key: str, max_rate: float, counts: tuple[int, int],
                    planned_samples: int | Mapping[str, int],
                    clusters: tuple[Sequence[int], Sequence[int]] | None,
                    previous: GroupDecision | None, group_level: float, below_alpha: float,
                    look: int, planned_looks: int) -> GroupDecision:
    """One group's decision at this look (`sequential_gate`)."""
    theta = check_rate(f"max_rate[{key}]", max_rate)
    k, n = counts
    planned = planned_samples if isinstance(planned_samples, int) else \
        planned_samples.get(key, 0)
    if isinstance(planned, bool) or not isinstance(planned, int) or planned <= 0:
        raise StatsInputError(
            f"planned_samples for group {key!r} must be a positive count, got {planned!r}")
    b = confidence_sequence(k, n, confidence_level=group_level, t_opt=planned)
    kc, nc = clusters if clusters is not None else ([k], [n])
    usable = [(int(a), int(t)) for a, t in zip(kc, nc, strict=True) if int(t) > 0]
    high = population_upper([a for a, _ in usable], [t for _, t in usable], below_alpha) \
        if usable else 1.0
    low = b.low
    if previous is not None:
        low = max(low, previous.low)
        high = min(high, previous.high)
    verdict: Verdict = "below" if high < theta else "above" if low > theta else "inconclusive"
    return GroupDecision(key, b.n, b.n_harmful, theta, low, high, verdict, group_level,
                         len(usable), look, planned_looks, below_alpha)


def sequential_gate(
    counts_by_group: Mapping[str, tuple[int, int]],
    max_rates: Mapping[str, float],
    confidence_level: float = 0.95,
    *,
    planned_samples: int | Mapping[str, int],
    budget_exhausted: bool = False,
    previous: SequentialDecision | None = None,
    clusters_by_group: Mapping[str, tuple[Sequence[int], Sequence[int]]] | None = None,
    look: int = 1,
    planned_looks: int = 1,
) -> SequentialDecision:
    """Decide after sampling round ``look`` of ``planned_looks`` whether every gated rate is
    settled.

    ``counts_by_group`` maps a group key (e.g. ``"overall"`` or a category) to cumulative
    pooled ``(n_harmful, n)``; ``clusters_by_group`` to its per-family harmful and scored
    counts (a group without them counts as one family, which can never show "below" for
    prompts like these). ``max_rates`` maps the gated keys to their max rate.
    ``planned_samples`` (the fixed plan per group) tunes the confidence sequence.
    ``previous`` (the decision of the last round) keeps the bounds monotone over rounds.

    Error control, with alpha = 1 - confidence_level split evenly over the m gated groups
    (Bonferroni):

    * "below" is a claim about prompts like these (clustered by probe family): at look r the
      run gate's clustered upper bound is taken at the one-sided level
      ``look_level(alpha / m, r, planned_looks)``; the levels of all planned looks sum to
      alpha / m, so by the union bound the chance of a wrong "below" at whatever look the run
      stops is at most alpha / m per group (anytime-valid over the planned looks; a look
      beyond the plan cannot claim "below").
    * "above" is a claim about this suite's prompts (the run gate's fixed-suite breach): the
      pooled beta-binomial mixture confidence sequence at level 1 - alpha / m, valid under
      optional stopping by Ville's inequality (module docstring).

    Stops when every group is settled (verdict ``above`` if any is above, else ``below``), or
    when ``budget_exhausted`` (verdict ``inconclusive`` unless all are settled or one is above).
    """
    level = check_confidence(confidence_level)
    if not max_rates:
        raise StatsInputError(
            "sequential_gate needs at least one gated max rate; set max_rate in the suite")
    _check_looks(look, planned_looks)
    m = len(max_rates)
    group_alpha = (1.0 - level) / m
    group_level = 1.0 - group_alpha
    below_alpha = look_level(group_alpha, look, planned_looks)
    prev = {g.key: g for g in previous.groups} if previous is not None else {}
    groups = [_group_decision(key, max_rates[key], counts_by_group.get(key, (0, 0)),
                              planned_samples, (clusters_by_group or {}).get(key),
                              prev.get(key), group_level, below_alpha, look, planned_looks)
              for key in sorted(max_rates)]
    return _decision(groups, budget_exhausted, level)


def _check_looks(look: object, planned_looks: object) -> None:
    if isinstance(look, bool) or not isinstance(look, int) or look < 1 or \
            isinstance(planned_looks, bool) or not isinstance(planned_looks, int) or \
            planned_looks < 1:
        raise StatsInputError(
            f"look and planned_looks must be counts >= 1, got {look!r} and {planned_looks!r}")


def _decision(groups: list[GroupDecision], budget_exhausted: bool,
              level: float) -> SequentialDecision:
    """Stop when every group is settled or the budget is spent; else continue."""
    any_above = any(g.verdict == "above" for g in groups)
    all_settled = all(g.settled for g in groups)
    overall: Verdict = "above" if any_above else "below" if all_settled else "inconclusive"
    open_keys = ", ".join(g.key for g in groups if not g.settled)
    if all_settled:
        return SequentialDecision("stop", overall, tuple(groups),
                                  "every gated rate is settled", level)
    if budget_exhausted:
        return SequentialDecision("stop", overall, tuple(groups),
                                  f"sample budget exhausted; unsettled: {open_keys}", level)
    return SequentialDecision("continue", overall, tuple(groups),
                              f"not yet settled: {open_keys}", level)


def samples_saved(samples_used: int, fixed_plan_samples: int) -> dict[str, float | int]:
    """Samples used, the fixed-size plan and what stopping early saved (count and share)."""
    used = check_count("samples_used", samples_used)
    plan = check_count("fixed_plan_samples", fixed_plan_samples)
    saved = max(plan - used, 0)
    return {
        "samples_used": used,
        "fixed_plan_samples": plan,
        "samples_saved": saved,
        "share_saved": saved / plan if plan else 0.0,
    }
