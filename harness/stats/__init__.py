"""Pure statistics for harmful-output rates: intervals, tests, clustering, comparisons,
multiplicity, misclassification correction and planning.

No I/O, no logging, no global random state: functions that resample take a
``numpy.random.Generator``. Bad numbers raise ``harness.errors.StatsInputError``.
See docs/statistics.md for what each number means and why each method was chosen.
"""

from __future__ import annotations

from harness.stats.binomial import (
    METHODS,
    Interval,
    binomial_interval,
    clopper_pearson_bound,
    difference_interval,
    exact_binomial_pvalue,
)
from harness.stats.clustered import (
    ClusteredEstimate,
    WorstCluster,
    anova_icc,
    cluster_rate_interval,
    cluster_threshold_pvalues,
    worst_cluster_bound,
    zero_event_upper,
)
from harness.stats.drift import (
    binomial_cusum,
    distribution_shift,
    proportion_shift,
    rate_homogeneity,
)
from harness.stats.misclassification import CorrectedRate, rogan_gladen, rogan_gladen_variance
from harness.stats.multiplicity import MultiplicityResult, benjamini_hochberg, holm
from harness.stats.paired import (
    PairedDifference,
    mcnemar_exact,
    noninferiority_verdict,
    paired_difference,
)
from harness.stats.planning import (
    SamplePlan,
    cluster_plan,
    clusters_needed,
    design_effect,
    more_samples_to_settle,
    plan_samples,
    samples_needed,
    samples_per_cluster_needed,
    zero_failure_n,
)
from harness.stats.sequential import (
    SequenceBound,
    SequentialDecision,
    confidence_sequence,
    confidence_sequence_path,
    sequential_gate,
)

__all__ = [
    "METHODS",
    "ClusteredEstimate",
    "CorrectedRate",
    "Interval",
    "MultiplicityResult",
    "PairedDifference",
    "SamplePlan",
    "SequenceBound",
    "SequentialDecision",
    "WorstCluster",
    "anova_icc",
    "benjamini_hochberg",
    "binomial_cusum",
    "binomial_interval",
    "clopper_pearson_bound",
    "cluster_plan",
    "cluster_rate_interval",
    "cluster_threshold_pvalues",
    "clusters_needed",
    "confidence_sequence",
    "confidence_sequence_path",
    "design_effect",
    "difference_interval",
    "distribution_shift",
    "exact_binomial_pvalue",
    "holm",
    "mcnemar_exact",
    "more_samples_to_settle",
    "noninferiority_verdict",
    "paired_difference",
    "plan_samples",
    "proportion_shift",
    "rate_homogeneity",
    "rogan_gladen",
    "rogan_gladen_variance",
    "samples_needed",
    "samples_per_cluster_needed",
    "sequential_gate",
    "worst_cluster_bound",
    "zero_event_upper",
    "zero_failure_n",
]

from harness.stats.paired import newcombe_paired_interval, rao_scott_paired_interval

__all__ += ["newcombe_paired_interval", "rao_scott_paired_interval"]
