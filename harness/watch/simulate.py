"""Simulated watches for the proofs in tests/ and bench/: nightly counts in, `WatchStatus` out.

Pure apart from the ``numpy.random.Generator`` passed in. A simulated watch is a ledger of
nightly runs whose harmful counts are drawn from given nightly rates, evaluated by the same
`evaluate_watch` that ``harness watch status`` calls (docs/watch.md, "Measured").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np

from harness.watch._evaluate import evaluate_watch
from harness.watch._outcomes import WatchStatus
from harness.watch._records import LedgerEntry, WatchDefinition

SIM_START = date(2026, 1, 1)


def step_rates(days: int, before: float, after: float, step_night: int) -> list[float]:
    """Nightly rates: ``before`` up to night ``step_night - 1`` (1-based), ``after`` from it."""
    return [before if night < step_night else after for night in range(1, days + 1)]


def simulate_watch(
    definition: WatchDefinition,
    nightly_rates: Sequence[float],
    samples_per_night: int,
    rng: np.random.Generator,
    *,
    panel_spread: float = 0.0,
) -> WatchStatus:
    """Draw one watch (one ledger line a night) and evaluate it on its last night.

    ``panel_spread`` > 0 draws each night's count from a fixed heterogeneous prompt panel
    (20 prompts whose rates are the night's rate times factors spread uniformly over
    ``1 +/- panel_spread``), i.e. Poisson-binomial rather than binomial nights.
    """
    start = definition.start or SIM_START
    n = int(samples_per_night)
    factors = np.ones(1)
    if panel_spread > 0:
        factors = np.linspace(1.0 - panel_spread, 1.0 + panel_spread, 20)
    entries = []
    for i, rate in enumerate(nightly_rates):
        per = np.clip(rate * factors, 0.0, 1.0)
        sizes = np.full(per.size, n // per.size)
        sizes[: n % per.size] += 1
        k = int(rng.binomial(sizes, per).sum())
        entries.append(LedgerEntry(
            seq=i + 1, run_id=f"r{i}", run_dir="sim", as_of=start + timedelta(days=i),
            recorded="", outcome="", n=n, n_harmful=k, n_planned=n, models=("m",),
            fingerprints=("f",)))
    as_of = start + timedelta(days=len(entries) - 1)
    return evaluate_watch(definition, entries, as_of)
