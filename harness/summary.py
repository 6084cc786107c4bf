"""The typed run summary: `RunSummary` and its `GroupRow`s; `to_dict()` is summary.json.

The summary contract (DESIGN.md) is JSON that other tools read, so `to_dict()` fixes the key
order as well as the keys: a row's optional fields appear only when they apply (a probe row
has `category`, a gated row its gate fields, ...), in the order the fields are declared.
Add fields freely (at the end of their block); never rename or drop one without a
schema_version bump. These records live beside `harness.records` rather than in it so that
each module stays under about 400 lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from harness.records import Verdict
from harness.suites import Price
from harness.tally import CellCounts

if TYPE_CHECKING:
    # Annotations only: importing the gate loads scipy, which `harness report` (summary.json
    # -> HTML) does not need.
    from harness.gating import GateVerdict
    from harness.stats.clustered import WorstCluster

# Gate fields that summary.json does not take from the gate: the row shows the naive Wilson
# display interval of all its samples instead.
_DISPLAY_KEYS = ("n", "n_harmful", "rate", "ci_low", "ci_high", "method")


class VerdictBasis(StrEnum):
    """Which claim decided a gated group's verdict (its value is what summary.json prints)."""

    NONE = ""
    """Inconclusive: no claim was made."""
    POPULATION = "prompt population (E2, clustered)"
    """The clustered bound over the prompt population decided (below or above)."""
    FIXED_SUITE = "fixed-suite rate (E1): this suite's prompts exceed the max"
    """The exact test on this suite's own prompts showed a breach the clustered bound could
    not."""
    SEQUENTIAL = "sequential: valid under optional stopping"
    """A `--sequential` run's anytime-valid confidence sequence decided."""


@dataclass(frozen=True)
class FixedSuiteTest:
    """The exact binomial test of "above" on the fixed suite (E1), across gated groups."""

    p_value: float
    p_adjusted: float


@dataclass(frozen=True)
class SequentialBounds:
    """A `--sequential` run's anytime-valid bounds that replace the fixed-n gate bounds."""

    gate_low: float
    gate_high: float
    gate_method: str
    fixed_n_verdict: Verdict


@dataclass(frozen=True)
class ProbeFlag:
    """Exploratory per-probe flag: above its category's max rate, BH-corrected."""

    p_value: float
    p_adjusted: float
    flagged: bool
    correction: str = "benjamini-hochberg"


@dataclass(frozen=True)
class GroupRow:
    """One group of summary.json: counts, the display interval and, when gated, the verdict.

    `gate` holds the gate's bounds and p-values; `verdict`, `verdict_basis` and
    `more_samples` are the final ones after every rule (gate, fixed-suite breach,
    sequential), which can differ from `gate.verdict`.
    """

    by: str
    key: str
    n: int
    n_scored: int
    n_harmful: int
    n_blocked: int
    n_error: int
    n_truncated: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    method: str
    n_probes: int
    n_flagged_by: Mapping[str, int]
    category: str | None = None
    max_rate: float | None = None
    verdict: Verdict | None = None
    gate: GateVerdict | None = None
    verdict_basis: VerdictBasis = VerdictBasis.NONE
    more_samples: int | None = None
    fixed_suite: FixedSuiteTest | None = None
    note: str | None = None
    deployment_severity: str | None = None
    failure: str | None = None
    flag: ProbeFlag | None = None
    sequential: SequentialBounds | None = None
    n_unclear: int = 0
    """Replies that neither refused nor complied (empty, gibberish, off topic): not scored."""
    n_labelled_by: Mapping[str, int] = field(default_factory=dict)
    """Scored samples each detector labelled (a calibration corrects only groups its
    detector labels throughout)."""
    label_quantity: str = "harm"
    """What "harmful" counts here: "harm", "non-refusal" (only rule detectors label the
    group: an upper bound on harm) or "refusal" (over-refusal controls)."""
    tokens_in: int = 0
    tokens_out: int = 0
    n_without_usage: int = 0
    """Answered samples whose answer came without token counts."""
    cost: float | None = None
    """Estimated cost of the group's tokens at the run's price (None without a price)."""

    @property
    def gated(self) -> bool:
        """Whether the group has a max rate (and so a verdict)."""
        return self.max_rate is not None

    def to_dict(self) -> dict[str, Any]:
        """The group as summary.json writes it."""
        d: dict[str, Any] = {
            "by": self.by, "key": self.key, "n": self.n, "n_scored": self.n_scored,
            "n_harmful": self.n_harmful, "n_blocked": self.n_blocked, "n_error": self.n_error,
            "n_truncated": self.n_truncated, "n_unclear": self.n_unclear, "rate": self.rate,
            "ci_low": self.ci_low, "ci_high": self.ci_high, "method": self.method,
            "n_probes": self.n_probes, "n_labelled_by": dict(self.n_labelled_by),
            "label_quantity": self.label_quantity, "n_flagged_by": dict(self.n_flagged_by),
            "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
            "n_without_usage": self.n_without_usage,
        }
        if self.cost is not None:
            d["cost"] = self.cost
        if self.category is not None:
            d["category"] = self.category
        if self.gate is not None:
            g = self.gate.to_dict()
            for k in _DISPLAY_KEYS:
                g.pop(k, None)
            d.update(g)
            d["verdict"] = self.verdict
            d["more_samples"] = self.more_samples
            if self.sequential is not None:
                d["gate_low"] = self.sequential.gate_low
                d["gate_high"] = self.sequential.gate_high
                d["gate_method"] = self.sequential.gate_method
            d["verdict_basis"] = self.verdict_basis.value
            if self.fixed_suite is not None:
                d["p_value_above_fixed_suite"] = self.fixed_suite.p_value
                d["p_adjusted_above_fixed_suite"] = self.fixed_suite.p_adjusted
        elif self.max_rate is not None:
            d["max_rate"] = self.max_rate
            d["verdict"] = self.verdict
        if self.note is not None:
            d["note"] = self.note
        if self.deployment_severity is not None:
            d["deployment_severity"] = self.deployment_severity
        if self.failure is not None:
            d["failure"] = self.failure
        if self.flag is not None:
            d["flag_p_value"] = self.flag.p_value
            d["flag_p_adjusted"] = self.flag.p_adjusted
            d["flagged"] = self.flag.flagged
            d["flag_correction"] = self.flag.correction
        if self.sequential is not None:
            d["fixed_n_verdict"] = self.sequential.fixed_n_verdict
        return d


@dataclass(frozen=True)
class ErrorCounts:
    """Samples without an answer, against the suite's maximum share."""

    n_error: int
    n: int
    error_share: float
    max_error_rate: float
    detector_errors: Mapping[str, int] = field(default_factory=dict)
    """Samples on which each detector failed (an error that is not the target's)."""

    def to_dict(self) -> dict[str, Any]:
        """As summary.json writes it."""
        return {"n_error": self.n_error, "n": self.n, "error_share": self.error_share,
                "max_error_rate": self.max_error_rate,
                "detector_errors": dict(self.detector_errors)}


@dataclass(frozen=True)
class CostEstimate:
    """Tokens times a price table: an estimate (the provider's invoice is what counts)."""

    currency: str
    per_1k_in: float
    per_1k_out: float
    cost_in: float
    cost_out: float

    @property
    def total(self) -> float:
        return self.cost_in + self.cost_out

    def to_dict(self) -> dict[str, Any]:
        return {"estimated": True, "currency": self.currency, "per_1k_in": self.per_1k_in,
                "per_1k_out": self.per_1k_out, "in": round(self.cost_in, 6),
                "out": round(self.cost_out, 6), "total": round(self.total, 6)}


@dataclass(frozen=True)
class TokenUsage:
    """The tokens of a run, from the `usage` the endpoint reported with each answer."""

    tokens_in: int
    tokens_out: int
    n_answered: int
    """Samples with an answer whose tokens could be counted (not errors or blocks)."""
    n_without_usage: int
    """Of those, answers that came without token counts: the totals are then lower bounds."""
    cost: CostEstimate | None = None

    @classmethod
    def from_cells(cls, cells: Iterable[CellCounts], price: Price | None) -> TokenUsage:
        """The run's tokens over every cell (over-refusal controls too: they are billed),
        and their estimated cost at `price`."""
        cells = list(cells)
        tokens_in = sum(c.tokens_in for c in cells)
        tokens_out = sum(c.tokens_out for c in cells)
        cost = None
        if price is not None:
            cost_in, cost_out = price.cost(tokens_in, tokens_out)
            cost = CostEstimate(price.currency, price.per_1k_in, price.per_1k_out, cost_in,
                                cost_out)
        return cls(tokens_in, tokens_out, sum(c.n - c.n_error - c.n_blocked for c in cells),
                   sum(c.n_without_usage for c in cells), cost)

    @property
    def note(self) -> str | None:
        """What the totals do not cover, or None when every answer reported its usage."""
        if not self.n_without_usage:
            return None
        return (f"{self.n_without_usage:,} of {self.n_answered:,} answers came without token "
                "counts (no `usage` in the endpoint's answer): the totals are lower bounds")

    def to_dict(self) -> dict[str, Any]:
        """As summary.json and manifest.json write it."""
        d: dict[str, Any] = {"in": self.tokens_in, "out": self.tokens_out,
                             "total": self.tokens_in + self.tokens_out,
                             "n_answered": self.n_answered,
                             "n_without_usage": self.n_without_usage,
                             "complete": self.n_without_usage == 0, "note": self.note,
                             "source": "usage reported by the endpoint; prompt tokens counted "
                                       "once per request"}
        if self.cost is not None:
            d["cost"] = self.cost.to_dict()
        return d


@dataclass(frozen=True)
class CrossCell:
    """Counts of one context x category pair (summary.json `context_category`): what the
    report's heat map draws, so it needs no samples.jsonl."""

    context: str
    category: str
    n: int
    n_scored: int
    n_harmful: int

    @property
    def rate(self) -> float | None:
        return self.n_harmful / self.n_scored if self.n_scored else None

    def to_dict(self) -> dict[str, Any]:
        """As summary.json writes it."""
        return {"context": self.context, "category": self.category, "n": self.n,
                "n_scored": self.n_scored, "n_harmful": self.n_harmful, "rate": self.rate}


@dataclass(frozen=True)
class CappedResponses:
    """Answers longer than `max_response_chars`: stored and labelled on their first
    `max_response_chars` characters."""

    n_capped: int
    max_response_chars: int

    def to_dict(self) -> dict[str, Any]:
        """As summary.json writes it."""
        return {"n_capped": self.n_capped, "max_response_chars": self.max_response_chars}


@dataclass(frozen=True)
class RunSummary:
    """What a run found; `to_dict()` is summary.json (contract in DESIGN.md)."""

    schema_version: int
    run_id: str
    suite: str
    deployment: str
    target: str | None
    started: str | None
    finished: str | None
    outcome: str
    confidence_level: float
    gate: Mapping[str, Any]
    estimands: Mapping[str, str]
    groups: Sequence[GroupRow]
    worst_probe: WorstCluster | None
    errors: ErrorCounts
    models: Mapping[str, int]
    system_fingerprints: Mapping[str, int]
    sequential: Mapping[str, Any] | None = None
    corrected: Sequence[Mapping[str, Any]] | None = None
    tokens: TokenUsage | None = None
    context_category: Sequence[CrossCell] = ()
    """Every context x category pair of the run, including over-refusal controls."""
    capped: CappedResponses | None = None

    @property
    def overall(self) -> GroupRow:
        """The overall row (harm categories), always the first group."""
        return self.groups[0]

    def gated_rows(self) -> list[GroupRow]:
        """The groups with a max rate, in summary order."""
        return [g for g in self.groups if g.gated]

    def to_dict(self) -> dict[str, Any]:
        """summary.json."""
        groups = [g.to_dict() for g in self.groups]
        d: dict[str, Any] = {
            "schema_version": self.schema_version, "run_id": self.run_id, "suite": self.suite,
            "deployment": self.deployment, "target": self.target, "started": self.started,
            "finished": self.finished, "outcome": self.outcome,
            "confidence_level": self.confidence_level, "gate": dict(self.gate),
            "estimands": dict(self.estimands), "overall": groups[0], "groups": groups,
            "worst_probe": self.worst_probe.to_dict() if self.worst_probe else None,
            "errors": self.errors.to_dict(), "models": dict(self.models),
            "system_fingerprints": dict(self.system_fingerprints),
        }
        if self.capped is not None:
            d["capped_responses"] = self.capped.to_dict()
        if self.sequential is not None:
            d["sequential"] = self.sequential
        if self.corrected is not None:
            d["corrected"] = list(self.corrected)
        if self.tokens is not None:
            d["tokens"] = self.tokens.to_dict()
        d["context_category"] = [c.to_dict() for c in self.context_category]
        return d
