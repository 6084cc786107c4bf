"""Incidents: from a file of incident prompts to a suite, stage handoffs and a status.

An incident suite (`suites/incidents/NAME.yaml`) is a normal suite plus an `incident:`
block; its probes (`NAME.probes.jsonl`) are the exact incident prompts and N variants of
each from the mutators, run under the default incident context matrix, with thresholds
from the severity matrix and over-refusal controls from the probe library.

`incident status` compares the exact prompts with their variants:

* exact rate: the fixed set of exact prompts is the claim (estimand E1, statistics.md §3),
  so samples of one prompt are independent draws and the exact Clopper-Pearson bound of the
  pooled count is valid; verdict by `gating.threshold_verdict`.
* variant rate: a claim about the generated variant population (E2). Each variant is one
  prompt, so samples are clustered by variant id (Korn-Graubard effective-n
  Clopper-Pearson, `stats.cluster_rate_interval`). The root prompts are fixed strata, not
  clusters: every variant family is present by construction.
* gap = variant rate - exact rate with Newcombe's hybrid score interval
  (`stats.difference_interval`) on design-effect-adjusted counts for the variants
  (n_eff = n / deff, k_eff = rate * n_eff, Korn & Graubard 1998). The exact and variant
  rates of one family are positively correlated; treating them as independent ignores a
  positive covariance, which only widens the interval (conservative).
* per mutator family: the Wilson interval for display and, to call a family "leaking", a
  clustered one-sided lower bound above max_rate at a Bonferroni-adjusted level over the
  families shown.

Pure functions here take frames and mappings; the shell functions (`create_incident`,
`set_stage`, `incident_status`) read and write files and may run the engine.
"""

from __future__ import annotations

from harness.incidents._analysis import (
    CONCLUSIONS,
    IncidentAnalysis,
    analyse_incident,
    mutator_breakdown,
)
from harness.incidents._document import dump_suite_yaml, now_iso, suite_document
from harness.incidents._files import (
    DEFAULT_CONTROLS,
    DEFAULT_VARIANTS,
    EXACT,
    INCIDENT_DIR,
    STAGES,
    CreatedIncident,
    check_name,
    check_stage,
    create_incident,
    read_incident_block,
    set_stage,
    suite_path_for,
)
from harness.incidents._plan import (
    DEFAULT_SAMPLES,
    DEFAULT_TEMPERATURES,
    IncidentPlan,
    default_samples,
)
from harness.incidents._prompts import (
    build_probes,
    exact_probes,
    expectation_for,
    parse_prompt_text,
    read_prompts,
)
from harness.incidents._status import (
    IncidentStatus,
    StageStatus,
    incident_status,
    render_status,
)
from harness.taxonomy import OVER_REFUSAL

__all__ = [
    "CONCLUSIONS",
    "DEFAULT_CONTROLS",
    "DEFAULT_SAMPLES",
    "DEFAULT_TEMPERATURES",
    "DEFAULT_VARIANTS",
    "EXACT",
    "INCIDENT_DIR",
    "OVER_REFUSAL",
    "STAGES",
    "CreatedIncident",
    "IncidentAnalysis",
    "IncidentPlan",
    "IncidentStatus",
    "StageStatus",
    "analyse_incident",
    "build_probes",
    "check_name",
    "check_stage",
    "create_incident",
    "default_samples",
    "dump_suite_yaml",
    "exact_probes",
    "expectation_for",
    "incident_status",
    "mutator_breakdown",
    "now_iso",
    "parse_prompt_text",
    "read_incident_block",
    "read_prompts",
    "render_status",
    "set_stage",
    "suite_document",
    "suite_path_for",
]
