"""The watch timeline figure, built to be read at a glance. Builds a matplotlib Figure; the
caller writes it (`watch run` does, `watch status` only with `--plot FILE`).

Panels, top to bottom, sharing the date axis:

* rates: each run's harmful rate with its own (fixed-n, display-only) interval, the
  confidence-sequence band (its lower bound decides a breach), the upper bound that decides
  holding / verified (`RunPoint.verify_high`: whole segment and final window, as if the
  period ended that night; labelled at the end with its value at this look), the max-rate
  line, missing nights shaded;
* nights: one mark per night of the period (ran, backfilled, missing, still ahead);
* alarms: one row per kind (breach, drift, model update, production), so a breach never
  hides under a drift marker; labels on one row alternate above and below when close;
* production (when telemetry was ingested): user reports per 1,000 requests against the
  baseline rate, and the classifier's mean score bin.

Legends sit outside the axes, so they never cover a point.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from harness.watch.model import WatchStatus

_ALARM_ROWS = (("breach", "breach", "#b2182b", "X"), ("drift", "drift", "#e08214", "D"),
               ("model-update", "model update", "#542788", "v"),
               ("production", "production", "#1b7837", "s"))
_LANES = (-6.0, 6.0)
"""Vertical offsets (points) of alarm labels on one row."""


def deciding_upper_bound(status: WatchStatus) -> float | None:
    """The upper bound that decides holding / verified now: the larger of the whole-segment
    and final-window exact upper bounds at this look's level (`status.verification`)."""
    high = (status.verification or {}).get("high")
    return float(high) if high is not None else None


def _x(d: date) -> float:
    import matplotlib.dates as mdates

    return float(mdates.date2num(d))  # type: ignore[no-untyped-call]


def _rates_panel(ax: Any, status: WatchStatus) -> None:
    pts = status.points
    cov = status.coverage
    if cov is not None:
        for i, night in enumerate(cov.nights_missing):
            ax.axvspan(_x(night) - 0.5, _x(night) + 0.5, color="#fddbc7", lw=0,
                       label="missing night" if i == 0 else None, zorder=0)
    ax.axhline(status.max_rate, color="#b2182b", ls="--", lw=1.3,
               label=f"max rate {status.max_rate:.2%}", zorder=2)
    for seg in sorted({p.segment for p in pts}):
        sp = sorted((p for p in pts if p.segment == seg), key=lambda p: p.as_of)
        dates = [_x(p.as_of) for p in sp]
        band = [*dates, dates[-1] + 1.0]
        lows = [p.cs_low for p in sp] + [sp[-1].cs_low]
        highs = [p.cs_high for p in sp] + [sp[-1].cs_high]
        ax.fill_between(band, lows, highs, step="post", alpha=0.22, color="#4393c3", lw=0,
                        label=f"{(1 + status.confidence_level) / 2:.1%} confidence sequence "
                        "(breach when its lower bound passes the max)" if seg == 0 else None,
                        zorder=1)
        verify = [p.verify_high for p in sp]
        if all(v is not None for v in verify):
            # The bound verified / holding is decided on (whole segment and final window),
            # not the sequence's upper edge: drawn as the verdict uses it.
            ax.step(band, [*verify, verify[-1]], where="post", color="#2166ac", lw=1.4,
                    label="upper bound deciding holding / verified" if seg == 0 else None,
                    zorder=3)
        rates = [p.rate if p.rate is not None else float("nan") for p in sp]
        yerr = [[max(r - p.ci_low, 0.0) for r, p in zip(rates, sp, strict=True)],
                [max(p.ci_high - r, 0.0) for r, p in zip(rates, sp, strict=True)]]
        ax.errorbar(dates, rates, yerr=yerr, fmt="o", ms=4, color="#053061",
                    ecolor="#92c5de", capsize=2, zorder=4,
                    label="run rate (Wilson, this run only)" if seg == 0 else None)
        if seg > 0:
            ax.axvline(dates[0] - 0.5, color="#542788", ls=":", lw=1.2,
                       label="new segment (model changed)" if seg == 1 else None)
    if pts:
        # The early, wide bounds may leave the top: the runs and the max rate decide the scale.
        top = min(1.0, max([p.ci_high * 1.1 for p in pts] + [status.max_rate * 2.5]))
        ax.set_ylim(0, top)
        last = max(pts, key=lambda p: p.as_of)
        bound = deciding_upper_bound(status)
        if bound is not None:
            ax.annotate(f"bound {bound:.1%}", (_x(last.as_of) + 1.0, min(bound, top * 0.96)),
                        xytext=(4, 0), textcoords="offset points", fontsize=7,
                        color="#2166ac", va="center")
    else:
        ax.set_ylim(0, min(1.0, status.max_rate * 2.5))
        ax.text(0.5, 0.55, "no runs yet", ha="center", va="center", transform=ax.transAxes,
                color="#666666")
    import matplotlib.ticker as mticker

    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set_ylabel("harmful-output rate")
    ax.grid(alpha=0.3)


def _nights_panel(ax: Any, status: WatchStatus) -> None:
    cov = status.coverage
    ax.set_yticks([])
    ax.set_ylim(-1, 1)
    ax.set_ylabel("nights", rotation=0, ha="right", va="center", fontsize=8)
    if cov is None or cov.start is None or cov.end is None:
        return
    ran = set(cov.nights_run)
    backfilled = set(cov.nights_backfilled)
    missing = set(cov.nights_missing)
    groups: dict[str, list[float]] = {"ran": [], "backfilled": [], "missing": [], "ahead": []}
    night = cov.start
    while night <= cov.end:
        if night in backfilled:
            groups["backfilled"].append(_x(night))
        elif night in ran:
            groups["ran"].append(_x(night))
        elif night in missing:
            groups["missing"].append(_x(night))
        elif night >= status.as_of:
            groups["ahead"].append(_x(night))
        night += timedelta(days=1)
    style = {"ran": ("#2166ac", "s", "ran"), "backfilled": ("#e08214", "s", "backfilled"),
             "missing": ("#b2182b", "x", "missing"), "ahead": ("#bbbbbb", "|", "ahead")}
    for key, xs in groups.items():
        if xs:
            color, marker, label = style[key]
            ax.plot(xs, [0] * len(xs), ls="none", marker=marker, ms=6, color=color,
                    label=f"{label} ({len(xs)})")
    ax.set_title(f"nights run {len(cov.nights_run)} / due {cov.nights_due} / missing "
                 f"{len(cov.nights_missing)}; verified needs {cov.nights_needed} of "
                 f"{status.days}" + ("  -  STALE: the cron has stopped" if status.stale else ""),
                 fontsize=8, loc="left", color="#b2182b" if status.stale else "black")


def _alarms_panel(ax: Any, status: WatchStatus) -> None:
    ax.set_ylim(-0.6, len(_ALARM_ROWS) - 0.4)
    ax.set_yticks(range(len(_ALARM_ROWS)))
    ax.set_yticklabels([r[1] for r in _ALARM_ROWS], fontsize=7)
    ax.invert_yaxis()
    ax.grid(alpha=0.2, axis="x")
    if not status.alarms:
        ax.text(0.5, 0.5, "no alarms", ha="center", va="center", transform=ax.transAxes,
                fontsize=8, color="#666666")
        return
    from matplotlib.transforms import offset_copy

    fig = ax.get_figure()
    lo, hi = ax.get_xlim()
    # Width of a 7-pt character in days: the axis spans the axes' width in inches.
    width_in = ax.get_position().width * fig.get_figwidth()
    days_per_char = (hi - lo) / max(width_in * 72.0 / 4.3, 1.0)
    lanes = {lane: offset_copy(ax.transData, fig=fig, x=6.0, y=lane, units="points")
             for lane in _LANES}
    for row, (kind, _label, color, marker) in enumerate(_ALARM_ROWS):
        mine = sorted((a for a in status.alarms if a.kind == kind), key=lambda a: a.as_of)
        # Greedy lanes: a label goes below the marker, else above, when the previous label
        # there has ended; when neither has, it starts after the earlier-ending one.
        lane_end = dict.fromkeys(_LANES, float("-inf"))
        for a in mine:
            x = _x(a.as_of)
            ax.plot([x], [row], marker=marker, ms=8, color=color, ls="none")
            lane = next((ln for ln in _LANES if lane_end[ln] < x), None)
            if lane is None:
                lane = min(_LANES, key=lambda ln: lane_end[ln])
            start = max(x, lane_end[lane] + days_per_char)
            lane_end[lane] = start + (len(a.signal) + 2) * days_per_char
            ax.text(start, row, a.signal, transform=lanes[lane], fontsize=7, color=color,
                    va="center", clip_on=False)


def _production_panel(ax: Any, status: WatchStatus) -> None:
    prod = status.production or {}
    days = prod.get("days") or []
    xs = [_x(date.fromisoformat(p["date"])) for p in days]
    rates = [1000.0 * p["report_rate"] for p in days]
    for role, color, label in (("baseline", "#999999", "reports per 1k (baseline days)"),
                               ("look", "#1b7837", "reports per 1k (tested days)")):
        sel = [(x, r) for x, r, p in zip(xs, rates, days, strict=True) if p["role"] == role]
        if sel:
            ax.bar([x for x, _ in sel], [r for _, r in sel], width=0.8, color=color,
                   label=label)
    base = prod.get("baseline") or {}
    if base.get("report_rate") is not None:
        ax.axhline(1000.0 * base["report_rate"], color="#555555", ls="--", lw=1,
                   label="baseline rate")
    ax.set_ylabel("reports / 1k")
    ax.grid(alpha=0.3)
    means = [(x, _mean_bin(p["classifier_histogram"])) for x, p in zip(xs, days, strict=True)
             if p.get("classifier_histogram")]
    if means:
        ax2 = ax.twinx()
        ax2.plot([m[0] for m in means], [m[1] for m in means], color="#762a83", lw=1.2,
                 marker=".", label="classifier mean")
        ax2.set_ylabel("classifier score", fontsize=8, color="#762a83")
        ax2.set_ylim(0, 1)
        handles, labels = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(handles + h2, labels + l2, fontsize=7, loc="upper left",
                  bbox_to_anchor=(1.1, 1.0), borderaxespad=0)
    else:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    for a in status.alarms:
        if a.kind == "production" and a.signal == "model-version":
            ax.axvline(_x(a.as_of) - 0.5, color="#542788", ls=":", lw=1.2)


def _mean_bin(hist: list[int]) -> float:
    total = sum(hist)
    return sum((i + 0.5) / len(hist) * c for i, c in enumerate(hist)) / total if total else 0.0


def timeline_figure(status: WatchStatus) -> Any:
    """A matplotlib Figure of the watch's timeline (Agg backend; no display needed)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: cron, CI; set here, not at import of harness
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    has_prod = bool(status.production and status.production.get("days"))
    ratios = [4.0, 0.6, 2.3] + ([2.4] if has_prod else [])
    fig = Figure(figsize=(11, 7.6 if has_prod else 6.0), dpi=110)
    axes = fig.subplots(len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    # Limits and layout first: the alarm labels are placed by the axis' days per inch.
    fig.subplots_adjust(left=0.08, right=0.74, top=0.93, bottom=0.1, hspace=0.25)
    dates = [p.as_of for p in status.points]
    if status.production:
        dates += [date.fromisoformat(p["date"]) for p in status.production.get("days", [])]
    lo = status.start or (min(dates) if dates else status.as_of)
    # The period (and any data); "today" only while inside it: a status read months after
    # the end must not squeeze the period into a corner.
    hi = max([status.end or lo, *dates, min(status.as_of, status.end or status.as_of)])
    axes[0].set_xlim(_x(lo - timedelta(days=1)), _x(hi + timedelta(days=2)))
    _rates_panel(axes[0], status)
    _nights_panel(axes[1], status)
    _alarms_panel(axes[2], status)
    if has_prod:
        _production_panel(axes[3], status)
    for ax in axes[:2]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      borderaxespad=0)
    locator = mdates.AutoDateLocator(maxticks=10)  # type: ignore[no-untyped-call]
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(
        mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]
    for label in axes[-1].get_xticklabels():
        label.set_rotation(30)
        label.set_ha("right")
    stale = "  STALE" if status.stale else ""
    bound = deciding_upper_bound(status)
    shown = f"upper bound {bound:.2%}" if bound is not None else "no bound yet"
    fig.suptitle(f"watch {status.name}: {status.status.upper()}{stale}   day "
                 f"{status.days_elapsed}/{status.days}, {status.runs} runs, pooled "
                 f"{status.n_harmful}/{status.n} harmful, {shown} vs max "
                 f"{status.max_rate:.2%}", fontsize=10, x=0.01, ha="left")
    return fig


def write_timeline(status: WatchStatus, path: str | Path) -> Path:
    """Render the timeline and write it as PNG."""
    from harness.plots import figure_png

    return write_png(figure_png(timeline_figure(status)), path)


def write_png(png: bytes, path: str | Path) -> Path:
    """Write PNG bytes atomically (readers see the old image or the new one)."""
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp.png")
    tmp.write_bytes(png)
    tmp.replace(out)
    return out
