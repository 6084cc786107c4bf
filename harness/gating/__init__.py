"""Pure verdict logic: counts + policy -> verdicts; verdicts -> run outcome.

* `threshold_verdict` (`_verdict`): one pooled count against a max rate, three-way from
  one-sided exact bounds; `run_outcome` turns verdicts into holds / breached / inconclusive /
  error; `EXIT_CODES`.
* `gate_groups` (`_groups`): every gated group of a run decided at once (the estimand's
  bound, intersection-union over conditions, Holm across groups), from the per-component
  bounds and p-values of `_bounds`; its records (`GateInput`, `ConditionCounts`,
  `GateVerdict`) are in `_records`.
"""

from __future__ import annotations

from harness.gating._groups import gate_groups
from harness.gating._records import (
    ESTIMANDS,
    MAX_UNSCORABLE_SHARE,
    ConditionCounts,
    GateInput,
    GateVerdict,
)
from harness.gating._verdict import (
    CORRECTIONS,
    EXIT_CODES,
    ThresholdVerdict,
    run_outcome,
    threshold_verdict,
)

__all__ = [
    "CORRECTIONS",
    "ESTIMANDS",
    "EXIT_CODES",
    "MAX_UNSCORABLE_SHARE",
    "ConditionCounts",
    "GateInput",
    "GateVerdict",
    "ThresholdVerdict",
    "gate_groups",
    "run_outcome",
    "threshold_verdict",
]
