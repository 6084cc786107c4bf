"""Input checks of the statistics functions, for callers outside `harness.stats`.

The public path to the checks that `harness.stats` applies to its own arguments
(implemented in `harness.stats._checks`), so gating, watches and other callers validate
counts, rates and confidence levels with the same rules and messages. Every check raises
`harness.errors.StatsInputError` quoting the offending value and how to fix it.
"""

from __future__ import annotations

from harness.stats._checks import (
    SIDES,
    check_clusters,
    check_confidence,
    check_count,
    check_k_n,
    check_rate,
    check_sides,
)

__all__ = [
    "SIDES",
    "check_clusters",
    "check_confidence",
    "check_count",
    "check_k_n",
    "check_rate",
    "check_sides",
]
