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
from harness.watch.ingest import DailySignal
from harness.watch.production import evaluate_signals

SIM_START = date(2026, 1, 1)

REPORT_SPIKE_GRID: tuple[tuple[float, float], ...] = (
    (1.0, 1.0), (1.0, 2.0), (1.0, 10.0), (1.0, 50.0), (2.0, 1.0), (2.0, 10.0),
    (3.0, 10.0), (5.0, 2.0), (5.0, 10.0), (5.0, 50.0), (10.0, 3.0), (10.0, 30.0),
    (20.0, 1.0), (20.0, 2.0), (20.0, 10.0), (20.0, 50.0), (50.0, 10.0), (50.0, 50.0),
    (100.0, 10.0))
"""(dispersion phi, reports a day per 10,000 requests) of the report-spike false-alarm grid
(docs/watch.md, bench/report_spike_grid.py, tests/stats/test_overdispersion.py): Poisson to
heavy clustering, quiet to busy."""


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


def simulate_report_days(
    rng: np.random.Generator,
    *,
    phi: float,
    reports_per_day: float,
    days: int,
    spike: float = 1.0,
    spike_from: int | None = None,
) -> list[DailySignal]:
    """Daily production telemetry: traffic uniform on 7,000-13,000 requests a day, user
    reports negative-binomial with mean ``reports_per_day`` per 10,000 requests times
    ``spike`` from day ``spike_from`` (0-based) on, and variance ``phi`` times the mean
    (Poisson when ``phi`` is 1)."""
    traffic = rng.integers(7_000, 13_000, size=days).astype(float)
    factor = np.ones(days)
    if spike_from is not None:
        factor[spike_from:] = spike
    mu = reports_per_day / 10_000 * traffic * factor
    if phi > 1.0:
        size = mu / (phi - 1.0)
        y = rng.negative_binomial(size, size / (size + mu))
    else:
        y = rng.poisson(mu)
    return [DailySignal(day=SIM_START + timedelta(days=i), traffic=int(t), reports=int(r))
            for i, (t, r) in enumerate(zip(traffic, y, strict=True))]


def report_alarm_share(
    definition: WatchDefinition,
    rng: np.random.Generator,
    *,
    phi: float,
    reports_per_day: float,
    reps: int,
    spike: float = 1.0,
) -> float:
    """Share of simulated watches whose production telemetry raises a `user-reports` alarm.

    Each watch ingests ``signal_baseline_days`` baseline days and then one day per night of
    the period (``definition.days`` looks), evaluated by the same `evaluate_signals` that
    `harness watch status` and `watch ingest` call, with its skip rules (a short or
    too-quiet baseline is not tested). A day's test depends only on the baseline and that
    day, so one evaluation of the whole series is the union of the nightly looks. With
    ``spike`` > 1 the rate is multiplied from the middle of the period on (power).
    """
    base = definition.signal_baseline_days
    total = base + definition.days
    hits = 0
    for _ in range(reps):
        rows = simulate_report_days(rng, phi=phi, reports_per_day=reports_per_day, days=total,
                                    spike=spike, spike_from=base + definition.days // 2)
        _, alarms = evaluate_signals(definition, rows)
        hits += any(a.signal == "user-reports" for a in alarms)
    return hits / reps
