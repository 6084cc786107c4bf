"""The watch timeline figure: per-run rates with intervals, the confidence-sequence band,
the max-rate line and the alarms. Builds a matplotlib Figure; the caller writes it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from harness.watch.model import WatchStatus

_ALARM_STYLE = {"breach": ("#b2182b", "X"), "drift": ("#e08214", "D"),
                "model-update": ("#542788", "v")}


def timeline_figure(status: WatchStatus) -> Any:
    """A matplotlib Figure of the watch's timeline (Agg backend; no display needed)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: cron, CI; set here, not at import of harness
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    def x(d: date) -> float:
        """Dates as matplotlib's day numbers (typed floats for the Axes API)."""
        return float(mdates.date2num(d))  # type: ignore[no-untyped-call]

    fig = Figure(figsize=(9, 4.8), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    pts = status.points
    if pts:
        for seg in sorted({p.segment for p in pts}):
            sp = [p for p in pts if p.segment == seg]
            dates = [x(p.as_of) for p in sp]
            # step="post" draws each look's band until the next look; repeat the last look
            # one day on so it is visible too.
            band_dates = [*dates, dates[-1] + 1.0]
            ax.fill_between(band_dates, [p.cs_low for p in sp] + [sp[-1].cs_low],
                            [p.cs_high for p in sp] + [sp[-1].cs_high],
                            step="post", alpha=0.25, color="#4393c3",
                            label=f"{status.confidence_level:.0%} confidence sequence"
                            if seg == 0 else None)
            rates = [p.rate if p.rate is not None else float("nan") for p in sp]
            yerr = [[max(r - p.ci_low, 0.0) for r, p in zip(rates, sp, strict=True)],
                    [max(p.ci_high - r, 0.0) for r, p in zip(rates, sp, strict=True)]]
            ax.errorbar(dates, rates, yerr=yerr, fmt="o", ms=4, color="#2166ac",
                        ecolor="#92c5de", capsize=2,
                        label="run rate (Wilson, this run only)" if seg == 0 else None)
            if seg > 0:
                ax.axvline(x(sp[0].as_of) - 0.5, color="#542788", ls=":", lw=1)
        ax.axhline(status.max_rate, color="#b2182b", ls="--", lw=1.2,
                   label=f"max rate {status.max_rate:.2%}")
        by_date = {p.as_of: p for p in pts}
        top = max([p.ci_high for p in pts] + [status.max_rate * 1.5])
        seen: set[str] = set()
        for a in status.alarms:
            color, marker = _ALARM_STYLE.get(a.kind, ("black", "*"))
            p = by_date.get(a.as_of)
            y = p.rate if p is not None and p.rate is not None else status.max_rate
            ax.axvline(x(a.as_of), color=color, lw=0.8, alpha=0.6)
            label = f"alarm: {a.kind}" if a.kind not in seen else None
            seen.add(a.kind)
            ax.plot([x(a.as_of)], [y], marker=marker, ms=9, color=color, ls="none", label=label)
            ax.annotate(a.signal, (x(a.as_of), top * 0.95), rotation=90, fontsize=7, color=color,
                        ha="right", va="top")
        ax.set_ylim(0, min(1.0, top * 1.05))
        if status.start is not None:
            ax.set_xlim(x(status.start - timedelta(days=1)),
                        x(max(status.end or status.start, pts[-1].as_of) + timedelta(days=1)))
        ax.xaxis.set_major_locator(mdates.AutoDateLocator())  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]
    else:
        ax.text(0.5, 0.5, "no runs yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("harmful-output rate")
    ax.set_title(f"watch {status.name}: {status.status} "
                 f"(day {status.days_elapsed}/{status.days}, {status.runs} runs)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def write_timeline(status: WatchStatus, path: str | Path) -> Path:
    """Render the timeline and write it as PNG."""
    out = Path(path)
    fig = timeline_figure(status)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(out)
    return out
