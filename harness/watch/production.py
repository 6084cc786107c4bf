"""Production signals of a watch: alarms from ingested daily telemetry (pure).

Three signals, from the rows `harness watch ingest` stored (`harness.watch.ingest`):

* ``user-reports``: a day's user-report count is too high for its traffic, against the
  baseline (the first ``signal_baseline_days`` ingested days), by the over-dispersed
  negative-binomial test of `harness.stats.overdispersion`;
* ``classifier-shift``: a day's histogram of production classifier scores differs from the
  baseline's (chi-square divided by the baseline's between-day dispersion);
* ``model-version``: the model version the telemetry reports changed from one day to the
  next (a fact, not a test: always an alarm).

False alarms: the two tests share a budget ``drift_alpha`` of their own (by default
1 - confidence level), split evenly, each spent over the looks (one a day after the
baseline) with `harness.stats.drift.look_alpha` planned over the watch's days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from harness.stats.drift import look_alpha
from harness.stats.overdispersion import (
    MIN_BASELINE_EVENTS,
    MIN_DAILY_SHAPE,
    baseline_dispersion,
    histogram_dispersion,
    report_spike_test,
    score_shift_test,
)
from harness.watch._outcomes import Alarm, WatchStatus
from harness.watch._records import WatchDefinition
from harness.watch.ingest import DailySignal

TESTED_SIGNALS = ("user-reports", "classifier-shift")


def evaluate_signals(definition: WatchDefinition, rows: Sequence[DailySignal]
                     ) -> tuple[dict[str, Any], list[Alarm]]:
    """The `production` section of a watch's status and its alarms."""
    d = definition
    rows = sorted(rows, key=lambda r: r.day)
    b = min(d.signal_baseline_days, len(rows))
    base, looks = rows[:b], rows[b:]
    baseline: dict[str, Any] = {
        "days": len(base), "needed_days": d.signal_baseline_days,
        "from": base[0].day.isoformat() if base else None,
        "to": base[-1].day.isoformat() if base else None,
    }
    disp, reason = _report_baseline(d, base, baseline)
    base_hists = [r.score_histogram for r in base if r.score_histogram is not None]
    pooled_hist = np.sum(base_hists, axis=0) if base_hists else None
    hist_phi = histogram_dispersion(base_hists) if len(base_hists) >= 2 else None
    if hist_phi is not None:
        baseline["classifier_dispersion_upper"] = hist_phi
    baseline["tested"] = disp is not None
    baseline["note"] = reason
    days = [_point(r, "baseline") for r in base]
    alarms: list[Alarm] = []
    alarmed: set[str] = set()
    fam_alpha = d.drift_budget / len(TESTED_SIGNALS)
    for look, r in enumerate(looks, start=1):
        level = look_alpha(fam_alpha, look, max(d.days, 1))
        point = _point(r, "look")
        point["look"] = look
        point["alpha_spent"] = level
        if disp is not None:
            alarms.extend(_report_look(disp, r, level, point, alarmed))
        if (pooled_hist is not None and hist_phi is not None and r.score_histogram is not None):
            alarms.extend(_classifier_look(pooled_hist, hist_phi, r, level, point, alarmed))
        days.append(point)
    alarms.extend(_model_version_alarms(rows))
    section = {
        "baseline": baseline,
        "days": days,
        "false_alarm_control": f"<= {d.drift_budget:g} for the report and classifier tests "
                               "together (split evenly, spent over daily looks); a model "
                               "version change always alarms",
    }
    return section, sorted(alarms, key=lambda a: (a.as_of, a.signal))


def _report_baseline(d: WatchDefinition, base: Sequence[DailySignal],
                     baseline: dict[str, Any]) -> tuple[Any, str]:
    """(the baseline's report dispersion, or None when the report test is off; why it is
    off), adding the baseline's report figures to `baseline`."""
    if len(base) < d.signal_baseline_days:
        return None, (f"baseline: {len(base)} of {d.signal_baseline_days} days ingested; the "
                      "report and classifier tests start after it")
    if sum(r.reports for r in base) < MIN_BASELINE_EVENTS:
        return None, (f"baseline has {sum(r.reports for r in base)} user reports (< "
                      f"{MIN_BASELINE_EVENTS}): too few to know their day-to-day spread; the "
                      "report test is off")
    disp = baseline_dispersion([r.reports for r in base], [r.traffic for r in base])
    baseline.update({"reports": int(disp.events), "traffic": int(disp.exposure),
                     "report_rate": disp.rate, "dispersion": disp.phi_hat,
                     "dispersion_upper": disp.phi_upper})
    if not disp.testable:
        return None, (f"baseline reports come in bursts (dispersion up to "
                      f"{disp.phi_upper:.3g}, {disp.events / disp.days:.3g} reports a day: "
                      f"a day's negative-binomial shape {disp.daily_shape:.2g} < "
                      f"{MIN_DAILY_SHAPE:g}); {len(base)} days cannot bound such a tail, so "
                      "the report test is off (a longer --signal-baseline-days may allow it)")
    return disp, ""


def _report_look(disp: Any, r: DailySignal, level: float, point: dict[str, Any],
                 alarmed: set[str]) -> list[Alarm]:
    """The user-report spike test of one day (its first alarm only)."""
    t = report_spike_test(disp, r.reports, r.traffic)
    point["report_test"] = {"p_value": t.p_value, "ratio": t.ratio,
                            "expected": t.expected, "method": t.method}
    if t.p_value > level or "user-reports" in alarmed:
        return []
    alarmed.add("user-reports")
    return [Alarm(
        "production", "user-reports", f"production:{r.day.isoformat()}", r.day, -1,
        f"user reports spiked: {r.reports} for {r.traffic} requests "
        f"({t.ratio:.1f}x the baseline rate {disp.rate:.3g}; expected about "
        f"{t.expected:.1f}; p = {t.p_value:.2g} <= {level:.2g}, over-dispersion "
        f"{disp.phi_upper:.2g} allowed for)",
        {"p_value": t.p_value, "alpha_spent": level, "ratio": t.ratio,
         "reports": r.reports, "traffic": r.traffic, "expected": t.expected,
         "dispersion_upper": disp.phi_upper, "method": t.method,
         "source": r.source})]


def _classifier_look(pooled_hist: Any, hist_phi: float, r: DailySignal, level: float,
                     point: dict[str, Any], alarmed: set[str]) -> list[Alarm]:
    """The classifier-score shift test of one day against the pooled baseline histogram."""
    assert r.score_histogram is not None
    st = score_shift_test(pooled_hist, r.score_histogram, hist_phi)
    point["classifier_test"] = {"p_value": st.p_value, "statistic": st.statistic,
                                "df": st.df, "method": st.method}
    if not (st.df > 0 and st.p_value <= level) or "classifier-shift" in alarmed:
        return []
    alarmed.add("classifier-shift")
    return [Alarm(
        "production", "classifier-shift", f"production:{r.day.isoformat()}", r.day,
        -1,
        f"production classifier scores shifted (mean bin {st.mean_bin_baseline:.2f}"
        f" -> {st.mean_bin_day:.2f} of 0-9; p = {st.p_value:.2g} <= {level:.2g}, "
        f"between-day dispersion {hist_phi:.2g} allowed for)",
        {"p_value": st.p_value, "alpha_spent": level, "statistic": st.statistic,
         "df": st.df, "histogram": list(r.score_histogram),
         "baseline_histogram": [int(x) for x in pooled_hist],
         "method": st.method, "source": r.source})]


def _model_version_alarms(rows: Sequence[DailySignal]) -> list[Alarm]:
    """An alarm at every change of the reported production model version."""
    alarms: list[Alarm] = []
    prev = None
    for r in rows:
        if r.model_version is None:
            continue
        if prev is not None and r.model_version != prev.model_version:
            alarms.append(Alarm(
                "production", "model-version", f"production:{r.day.isoformat()}", r.day, -1,
                f"production model version changed: {prev.model_version} "
                f"({prev.day.isoformat()}) -> {r.model_version} ({r.day.isoformat()})",
                {"from": prev.model_version, "to": r.model_version, "source": r.source}))
        prev = r
    return alarms


def _point(r: DailySignal, role: str) -> dict[str, Any]:
    return {"date": r.day.isoformat(), "role": role, "traffic": r.traffic,
            "reports": r.reports, "report_rate": r.reports / r.traffic,
            "model_version": r.model_version,
            "classifier_histogram": list(r.score_histogram)
            if r.score_histogram is not None else None}


def with_signals(status: WatchStatus, definition: WatchDefinition,
                 rows: Sequence[DailySignal]) -> WatchStatus:
    """The status with the production section and alarms added (pure).

    A production alarm turns a watching / holding / verified watch into `drift` (exit 1):
    the watch heard something its own sampling did not.
    """
    if not rows:
        return status
    section, alarms = evaluate_signals(definition, [r for r in rows if r.day <= status.as_of])
    new_status = status.status
    if alarms and new_status in ("watching", "holding", "verified"):
        new_status = "drift"
    return replace(status, status=new_status, alarms=(*status.alarms, *alarms),
                   production=section)
