"""E3, the worst probe: the highest observed rate and a simultaneous (Bonferroni) upper
bound on the worst true rate, with the probes whose simultaneous lower bound exceeds a level
(docs/statistics.md §2). Pure functions of counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import special

from harness.errors import StatsInputError
from harness.stats._checks import check_clusters, check_confidence, check_rate


@dataclass(frozen=True)
class WorstCluster:
    """The worst cluster (probe) and a simultaneous upper bound on the worst true rate.

    ``upper`` bounds max_j p_j: every cluster gets a one-sided Clopper-Pearson bound at
    level 1 - alpha/C (Bonferroni), so with probability >= confidence_level all hold at
    once, and the largest of them bounds the worst true rate. ``n_above_tau`` counts
    clusters whose simultaneous lower bound (also alpha/C) exceeds ``tau`` (when given).
    """

    worst_id: str
    worst_rate: float
    worst_k: int
    worst_n: int
    upper: float
    upper_id: str
    confidence_level: float
    n_clusters: int
    correction: str = "bonferroni"
    tau: float | None = None
    n_above_tau: int | None = None
    ids_above_tau: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        d = asdict(self)
        d["ids_above_tau"] = list(self.ids_above_tau)
        return d


def worst_cluster_bound(
    k_per_cluster: Sequence[int] | np.ndarray,
    n_per_cluster: Sequence[int] | np.ndarray,
    confidence_level: float = 0.95,
    ids: Sequence[str] | None = None,
    tau: float | None = None,
) -> WorstCluster:
    """Worst cluster (highest observed rate) and a simultaneous upper bound on the worst rate.

    Each cluster's one-sided exact bound is taken at level 1 - alpha/C (Bonferroni), so the
    bounds hold together with probability >= confidence_level whatever the dependence.
    """
    k, n = check_clusters(k_per_cluster, n_per_cluster)
    c = check_confidence(confidence_level)
    names = [str(i) for i in range(k.size)] if ids is None else [str(i) for i in ids]
    if len(names) != k.size:
        raise StatsInputError(f"ids has {len(names)} names for {k.size} clusters")
    a = (1.0 - c) / k.size
    uppers = np.where(k >= n, 1.0, special.betaincinv(k + 1, np.maximum(n - k, 1), 1.0 - a))
    lowers = np.where(k <= 0, 0.0, special.betaincinv(np.maximum(k, 1), n - k + 1, a))
    rates = k / n
    # Worst observed: highest rate; ties broken by more evidence (larger n), then order.
    worst = int(np.lexsort((-n, -rates))[0])
    top = int(np.argmax(uppers))
    above: tuple[str, ...] = ()
    n_above: int | None = None
    tau_f: float | None = None
    if tau is not None:
        tau_f = check_rate("tau", tau)
        above = tuple(names[i] for i in np.flatnonzero(lowers > tau_f))
        n_above = len(above)
    return WorstCluster(
        worst_id=names[worst], worst_rate=float(rates[worst]), worst_k=int(k[worst]),
        worst_n=int(n[worst]), upper=float(uppers[top]), upper_id=names[top],
        confidence_level=c, n_clusters=int(k.size), tau=tau_f, n_above_tau=n_above,
        ids_above_tau=above)
