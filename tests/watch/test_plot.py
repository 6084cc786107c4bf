"""The timeline reads at a glance: legend off the points, labels that do not collide,
breach and drift markers apart, missing nights and production signals drawn."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from harness.watch import evaluate_watch, timeline_figure
from harness.watch.ingest import parse_signals
from harness.watch.model import Alarm, LedgerEntry, WatchDefinition
from harness.watch.production import with_signals

START = date(2025, 1, 1)
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "production-signals.jsonl"
DEF = WatchDefinition(name="p", suite="s.yaml", target="sim", max_rate=0.05, days=10,
                      min_runs=1, start=START)


def _entry(seq: int, night: int, k: int = 1, n: int = 100) -> LedgerEntry:
    return LedgerEntry(seq=seq, run_id=f"r{seq}", run_dir=f"runs/r{seq}",
                       as_of=START + timedelta(days=night), recorded="", outcome="holds",
                       n=n, n_harmful=k, n_planned=n, models=("m",))


def _render(fig: Any) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def test_one_run_legend_does_not_cover_the_point() -> None:
    st = evaluate_watch(DEF, [_entry(1, 0)], START)
    fig = timeline_figure(st)
    renderer = _render(fig)
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    point = ax.transData.transform((ax.lines[-1].get_xdata()[0], 0.01))
    assert not legend.contains(*point)
    assert legend.x0 >= ax.get_window_extent(renderer).x1  # outside the axes


def test_alarm_labels_do_not_collide_and_breach_is_not_under_drift() -> None:
    st = evaluate_watch(DEF, [_entry(1, 0), _entry(2, 1)], START + timedelta(days=1))
    day = START + timedelta(days=1)
    alarms = tuple(Alarm(kind, sig, "r2", day + timedelta(days=off), 1, "m")
                   for kind, sig, off in (("breach", "confidence-sequence", 0),
                                          ("drift", "cusum", 0), ("drift", "homogeneity", 0),
                                          ("drift", "length-shift", 1),
                                          ("production", "user-reports", 1),
                                          ("production", "classifier-shift", 1),
                                          ("production", "model-version", 2)))
    st = replace(st, alarms=alarms, status="breached")
    fig = timeline_figure(st)
    renderer = _render(fig)
    ax = fig.axes[2]
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == len(alarms)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (ax.texts[boxes.index(a)].get_text(),
                                       ax.texts[boxes.index(b)].get_text(), a, b)
    ys = {line.get_ydata()[0] for line in ax.lines}
    assert len(ys) == 3  # breach, drift and production rows apart


def test_missing_nights_and_the_production_panel_are_drawn() -> None:
    entries = [_entry(1, 0), _entry(2, 1), _entry(3, 4)]
    st = evaluate_watch(DEF, entries, START + timedelta(days=5))
    rows = parse_signals(EXAMPLE.read_text(), "x.jsonl")
    st = with_signals(st, replace(DEF, days=30), rows)
    fig = timeline_figure(st)
    nights = fig.axes[1]
    labels = [line.get_label() for line in nights.lines]
    assert {"missing (2)", "ran (3)", "ahead (5)"} == set(labels)
    assert any(p.get_label() == "missing night" for p in fig.axes[0].patches)
    assert len(fig.axes) >= 4 and fig.axes[3].get_ylabel() == "reports / 1k"
    assert "max rate 5.00%" in [line.get_label() for line in fig.axes[0].lines]
    assert fig.texts[0].get_text().startswith("watch p: ")


def test_a_status_read_long_after_the_end_keeps_the_period_in_view() -> None:
    st = evaluate_watch(DEF, [_entry(1, 0), _entry(2, 1)], START + timedelta(days=300))
    fig = timeline_figure(st)
    import matplotlib.dates as mdates

    _lo, hi = fig.axes[0].get_xlim()
    assert mdates.num2date(hi).date() <= START + timedelta(days=DEF.days + 2)


def test_the_bound_drawn_is_the_one_the_verdict_uses() -> None:
    """holding / verified is decided by the whole-segment and final-window exact upper
    bounds (verify_rate), not the confidence sequence's upper edge: the line and its label
    carry those values."""
    from harness.stats.windowed import (
        VERIFY_WINDOW_SHARE,
        verification_alpha,
        verify_rate,
        window_nights,
    )
    from harness.watch.plot import deciding_upper_bound

    entries = [_entry(i + 1, i, k=1, n=400) for i in range(10)]
    st = evaluate_watch(DEF, entries, START + timedelta(days=9))
    assert st.status == "verified"
    fig = timeline_figure(st)
    ax = fig.axes[0]
    label = "upper bound deciding holding / verified"
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    window = window_nights(DEF.days, VERIFY_WINDOW_SHARE)
    # Independent: the first-look bound after each night, recomputed from the counts.
    want = [max((v := verify_rate([1] * j, [400] * j, DEF.max_rate,
                                  alpha=verification_alpha(DEF.alpha, 1), window=window)
                 ).period_high, v.window_high) for j in range(1, 11)]
    assert list(line.get_ydata())[:-1] == want
    assert want[-1] != st.cs_high  # the sequence's edge is another number
    bound = deciding_upper_bound(st)
    assert bound is not None and bound == max(st.verification["period_high"],
                                              st.verification["window_high"])
    assert [t.get_text() for t in ax.texts] == [f"bound {bound:.1%}"]
    assert f"upper bound {bound:.2%} vs max 5.00%" in fig.texts[0].get_text()
