"""Pure watch evaluation: statuses, alarms and their false-alarm control, from synthetic
ledgers (no engine)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from harness.stats.sequential import confidence_sequence
from harness.watch.model import (
    LedgerEntry,
    WatchDefinition,
    evaluate_watch,
    segment_indices,
)

START = date(2026, 1, 1)


def _defn(**kw: Any) -> WatchDefinition:
    base: dict[str, Any] = {"name": "w", "suite": "s.yaml", "target": "sim:patched",
                            "max_rate": 0.05, "days": 30, "min_runs": 3,
                            "confidence_level": 0.95, "start": START}
    base.update(kw)
    return WatchDefinition(**base)


def _entries(harmful: list[int], n: int = 200, models: list[str] | None = None,
             tests: list[dict[str, Any]] | None = None) -> list[LedgerEntry]:
    out = []
    for i, k in enumerate(harmful):
        out.append(LedgerEntry(
            seq=i + 1, run_id=f"r{i}", run_dir=f"runs/r{i}", as_of=START + timedelta(days=i),
            recorded="", outcome="holds", n=n, n_harmful=k, n_planned=n,
            models=(models[i] if models else "m1",), fingerprints=("fp1",),
            reference_run_id="r0" if i else None,
            tests=tests[i] if tests else {}))
    return out


def test_too_few_runs_is_watching_then_holding_then_verified() -> None:
    d = _defn(days=10)
    st = evaluate_watch(d, _entries([0, 0]), START + timedelta(days=1))
    assert st.status == "watching" and st.exit_code == 0
    assert (st.days_elapsed, st.days_left, st.runs) == (2, 8, 2)
    st = evaluate_watch(d, _entries([0, 1, 0, 0]), START + timedelta(days=3))
    assert st.status == "holding"
    # the pooled bound shown is the breach CS (at 1 - alpha/2) of the pooled counts
    cs = confidence_sequence(1, 800, confidence_level=0.975, t_opt=200 * 10)
    assert st.cs_high == pytest.approx(cs.high)
    st = evaluate_watch(d, _entries([0, 1, 0, 0, 1, 0, 0, 0, 1, 0]), START + timedelta(days=9))
    assert st.status == "verified" and st.days_left == 0 and st.exit_code == 0


def test_breach_when_lower_bound_passes_max_rate() -> None:
    st = evaluate_watch(_defn(), _entries([30, 28, 33]), START + timedelta(days=2))
    assert st.status == "breached" and st.exit_code == 1
    breach = [a for a in st.alarms if a.kind == "breach"]
    assert breach and breach[0].evidence["cs_low"] > 0.05
    doc = st.to_dict()
    for key in ("status", "days_elapsed", "days_left", "runs", "pooled", "alarms"):
        assert key in doc
    assert doc["pooled"]["cs_low"] == st.cs_low and doc["alarms"][0]["evidence"]


def test_model_update_starts_a_new_segment_and_alarms() -> None:
    models = ["m1"] * 5 + ["m2"] * 3
    entries = _entries([0] * 8, models=models)
    assert segment_indices(entries) == [0] * 5 + [1] * 3
    st = evaluate_watch(_defn(), entries, START + timedelta(days=7))
    assert st.status == "drift" and st.exit_code == 1
    upd = [a for a in st.alarms if a.kind == "model-update"]
    assert len(upd) == 1 and upd[0].run_id == "r5"
    assert upd[0].evidence["from_models"] == ["m1"] and upd[0].evidence["to_models"] == ["m2"]
    assert st.runs_in_segment == 3 and st.n == 600


def test_rate_jump_raises_drift() -> None:
    harmful = [1, 0, 1, 0, 1, 0, 1, 0, 8, 9, 8]
    st = evaluate_watch(_defn(max_rate=0.1), _entries(harmful), START + timedelta(days=10))
    signals = {a.signal for a in st.alarms}
    assert st.status == "drift"
    assert "homogeneity" in signals


def test_cusum_catches_a_recent_rise_above_the_max_rate() -> None:
    # long clean history keeps the pooled lower bound under the max rate for a while
    harmful = [0] * 20 + [25, 25, 25]
    st = evaluate_watch(_defn(), _entries(harmful), START + timedelta(days=22))
    assert "cusum" in {a.signal for a in st.alarms}


def test_stored_shift_tests_use_the_spent_alpha() -> None:
    d = _defn(days=30)
    # look 1 has alpha_family/(2*29) = 0.01/58 ~ 1.7e-4 for one score detector
    tests = [{}, {"score:refusal": {"p_value": 1e-6, "method": "ks-2samp"}}, {}]
    st = evaluate_watch(d, _entries([0, 0, 0], tests=tests), START + timedelta(days=2))
    assert [a.signal for a in st.alarms] == ["score-shift"]
    tests = [{}, {"score:refusal": {"p_value": 1e-3, "method": "ks-2samp"},
                  "length": {"p_value": 0.5}, "refusal": {"p_value": 0.2}}, {}]
    st = evaluate_watch(d, _entries([0, 0, 0], tests=tests), START + timedelta(days=2))
    assert st.alarms == () and st.status == "holding"


def test_evaluation_is_deterministic() -> None:
    entries = _entries([0, 1, 0, 2, 0, 1, 3, 0])
    a = evaluate_watch(_defn(), entries, START + timedelta(days=7)).to_dict()
    b = evaluate_watch(_defn(), entries, START + timedelta(days=7)).to_dict()
    assert a == b


def _stationary_entries(rng: np.random.Generator, p: float, n: int, looks: int,
                        refusal_p: float) -> list[LedgerEntry]:
    harmful = rng.binomial(n, p, size=looks)
    refused = rng.binomial(n, refusal_p, size=looks)
    out = []
    for i in range(looks):
        tests = {}
        if i:
            res = sps.fisher_exact([[refused[0], n - refused[0]], [refused[i], n - refused[i]]])
            tests["refusal"] = {"p_value": float(res.pvalue), "method": "fisher-exact"}
        out.append(LedgerEntry(
            seq=i + 1, run_id=f"r{i}", run_dir="x", as_of=START + timedelta(days=i),
            recorded="", outcome="", n=n, n_harmful=int(harmful[i]), n_planned=n,
            n_refused=int(refused[i]), models=("m",), fingerprints=("f",), tests=tests))
    return out


@pytest.mark.slow
def test_false_alarms_over_60_stationary_nights() -> None:
    """Issue 4 proof (full version through evaluate_watch): a stationary rate below the max
    rate over 60 nightly looks; false breaches <= 1 - confidence, and false drift alarms
    (homogeneity, CUSUM, refusal shift) <= the drift budget."""
    rng = np.random.default_rng(60)
    d = _defn(days=60, max_rate=0.05)
    reps = 200
    breaches = drifts = 0
    for r in range(reps):
        entries = _stationary_entries(rng, 0.04, 100, 60, 0.9)
        st = evaluate_watch(d, entries, START + timedelta(days=59))
        breaches += any(a.kind == "breach" for a in st.alarms)
        drifts += any(a.kind == "drift" for a in st.alarms)
        del r
    assert breaches / reps <= 0.05
    assert drifts / reps <= 0.05
