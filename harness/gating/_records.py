"""The typed records of a gate: what goes in per group (`GateInput`, `ConditionCounts`) and
what comes out (`GateVerdict`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.stats.requests import INDEPENDENT, RequestDependence

ESTIMANDS = ("population", "fixed-set")
MAX_UNSCORABLE_SHARE = 0.5
"""A group whose answers are mostly not scorable (blocked, unclear, error) cannot hold."""


@dataclass(frozen=True)
class ConditionCounts:
    """One condition of a gated group (a temperature or a context): per-cluster counts."""

    by: str
    key: str
    k_per_cluster: Sequence[int]
    n_per_cluster: Sequence[int]


@dataclass(frozen=True)
class GateInput:
    """One gated group: per-cluster (probe family) harmful and scored counts and its max rate.

    ``by``/``key`` name the group as in summary.json. ``conditions``: the same group split by
    temperature and by context; "below" must hold in every one (intersection-union test).
    ``n_unscorable``: samples of the group that were not scored (blocked, unclear, error);
    ``n_error`` the errors among them. ``estimand``: "population" (prompts like these,
    clustered) or "fixed-set" (exactly these prompts: pooled exact bound).
    """

    by: str
    key: str
    k_per_cluster: Sequence[int]
    n_per_cluster: Sequence[int]
    max_rate: float
    cluster_ids: Sequence[str] | None = None
    conditions: Sequence[ConditionCounts] = ()
    n_unscorable: int = 0
    n_error: int = 0
    n_samples: int | None = None
    """All samples of the group (scored, repeats and unscorable); default scored + unscorable."""
    estimand: str = "population"
    request_dependence: RequestDependence = INDEPENDENT
    """How dependent the choices of one request were (`harness.stats.requests`): the
    analyses that take samples as independent ("this suite", the "above" test) use the
    effective counts k/deff, n/deff at its design effect (1 when every choice was its own
    request or the choices of a request were independent)."""


@dataclass(frozen=True)
class GateVerdict:
    """Verdict of one gated group with everything the run summary shows.

    ``rate``/``ci_low``/``ci_high``/``method``: pooled rate with the two-sided Wilson interval
    (display only). ``deciding_bound``: the bound that decided (upper for below/inconclusive,
    lower for above) at ``deciding_level`` (one-sided tail after the multiplicity step), of
    the ``deciding_condition`` ("all" or e.g. "temperature=1"); ``gate_low``/``gate_high``
    the whole group's one-sided bounds at that level. ``population_high`` ("prompts like
    these") and ``fixed_set_high`` ("this suite") are both shown at that level. ``p_value``:
    the "below" p-value (max over conditions) and ``p_adjusted`` after ``correction``; the
    ``_above`` pair for the "above" claim (fixed-suite exact test, Bonferroni over conditions).
    ``worst_case_high``/``best_case_high``: the upper bound with every unscorable sample
    counted harmful / safe. ``hint_kind``/``hint_n``: "more samples" (per probe) or "more
    probes" and how many, projected from the observed counts; ``more_samples`` the total new
    samples of that hint (0 when settled, None when nothing would settle it).
    """

    by: str
    key: str
    n: int
    n_harmful: int
    rate: float
    ci_low: float
    ci_high: float
    method: str
    gate_low: float
    gate_high: float
    gate_method: str
    max_rate: float
    verdict: str
    verdict_reason: str
    estimand: str
    deciding_bound: float
    deciding_level: float
    deciding_condition: str
    population_high: float | None
    fixed_set_high: float
    p_value: float
    p_adjusted: float
    p_value_above: float
    p_adjusted_above: float
    correction: str
    confidence_level: float
    n_clusters: int
    n_active_clusters: int
    max_icc: float | None
    design_effect: float | None
    effective_n: float | None
    cluster_rate: float | None
    cluster_ci_low: float | None
    cluster_ci_high: float | None
    n_unscorable: int
    unscorable_share: float
    n_error: int
    error_share: float
    worst_case_high: float
    best_case_high: float
    hint_kind: str | None
    hint_n: int | None
    more_samples: int | None
    request_dependence: RequestDependence = INDEPENDENT

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (the fields summary.json uses for gated groups)."""
        return asdict(self)
