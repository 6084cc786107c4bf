"""Matplotlib figures of a run summary (summary.json): pure builders, the caller writes files.

Every figure is built from the summary dict alone (no samples, no model output text), so the
figures can go into reports shared with people who must not read harmful text.

* `forest_figure`: rate and display interval per gated group (overall, categories) and the
  probes with the highest rates, with the max rate and the bound that decided the verdict.
* `temperature_figure`: rate by sampling temperature with its interval.
* `heatmap_figure`: context x category rate grid, from summary.json's `context_category`
  counts (`cross_rows` rebuilds them from per-cell counts for older summaries).
* `variant_figure`: exact incident prompts against their variant families, for incidents.

Figures use the Agg backend (headless: CI, cron); `figure_png` turns one into PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Verdict colours: colour-blind safe (ColorBrewer RdBu / PuOr ends), also told apart by marker.
VERDICT_STYLE: dict[str, tuple[str, str]] = {
    "below": ("#2166ac", "o"),
    "above": ("#b2182b", "X"),
    "inconclusive": ("#e08214", "D"),
    "": ("#555555", "o"),
}


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless; set when a figure is built, not at import of harness
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _percent_axis(ax: Any, axis: str = "x") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(PercentFormatter(1.0))


def deciding_bound(row: Mapping[str, Any]) -> float | None:
    """The one-sided bound that decided a gated group's verdict.

    "below" is decided by the upper bound, "above" by the lower one; an inconclusive
    verdict is shown with the upper bound (the one that would have to drop below the
    maximum for the claim a release needs). None for an "above" decided by the exact test
    on the fixed suite (no bound decided it). A summary that names the bound itself
    (`deciding_bound`) wins.
    """
    if row.get("deciding_bound") is not None:
        return float(row["deciding_bound"])
    if "max_rate" not in row:
        return None
    if row.get("verdict") == "above":
        # An "above" shown on the fixed suite (E1, exact test) was not decided by the
        # clustered lower bound; that bound then lies below the max and decided nothing.
        low = row.get("gate_low")
        if low is None or float(low) <= float(row["max_rate"]):
            return None
        return float(low)
    high = row.get("gate_high")
    return float(high) if high is not None else None


def forest_rows(summary: Mapping[str, Any], max_probes: int = 20) -> list[dict[str, Any]]:
    """Rows of the forest plot: gated groups first, then ungated categories, then the probes
    with the highest observed rates (at most `max_probes`)."""
    groups = summary.get("groups") or []
    rows = [g for g in groups if g.get("by") in ("overall", "category") and g.get("n_scored")]
    probes = sorted((g for g in groups if g.get("by") == "probe" and g.get("n_scored")),
                    key=lambda g: (-(g.get("rate") or 0.0), str(g.get("key"))))[:max_probes]
    return [*rows, *probes]


def forest_figure(summary: Mapping[str, Any], max_probes: int = 20) -> Any:
    """Forest plot: one line per group, point = rate, bar = display interval, | = max rate,
    triangle = the deciding (gate) bound, coloured by verdict."""
    rows = forest_rows(summary, max_probes)
    fig = _figure(8.5, max(2.2, 0.32 * len(rows) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    if not rows:
        ax.text(0.5, 0.5, "no scored samples", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    labels = ["overall (harm categories)" if g.get("by") == "overall"
              else str(g["key"]) if g.get("by") == "category" else f"probe {g['key']}"
              for g in rows]
    ys = {id(g): float(len(rows) - 1 - i) for i, g in enumerate(rows)}
    drawn = [g for g in rows if g.get("rate") is not None and g.get("ci_low") is not None
             and g.get("ci_high") is not None]
    # One artist per verdict (not per row): building the figure stays fast for long suites.
    for verdict in sorted({str(g.get("verdict", "")) for g in drawn}):
        color, marker = VERDICT_STYLE.get(verdict, VERDICT_STYLE[""])
        sub = [g for g in drawn if str(g.get("verdict", "")) == verdict]
        y = [ys[id(g)] for g in sub]
        ax.hlines(y, [g["ci_low"] for g in sub], [g["ci_high"] for g in sub], color=color,
                  lw=2, alpha=0.7)
        ax.plot([g["rate"] for g in sub], y, marker=marker, color=color, ms=7, ls="none",
                label=f"verdict: {verdict}" if verdict else "not gated")
    gated = [g for g in drawn if "max_rate" in g]
    if gated:
        ax.plot([g["max_rate"] for g in gated], [ys[id(g)] for g in gated], marker="|", ms=16,
                mew=2, color="black", ls="none", label="max rate")
        for direction, marker in (("upper", "<"), ("lower", ">")):
            pts = [(b, ys[id(g)]) for g in gated
                   if (b := deciding_bound(g)) is not None
                   and (g.get("verdict") == "above") == (direction == "lower")]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, ms=7,
                        color="black", mfc="white", ls="none",
                        label=f"deciding bound ({direction})")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(list(reversed(labels)), fontsize=8)
    _percent_axis(ax, "x")
    conf = summary.get("confidence_level", 0.95)
    ax.set_xlabel(f"harmful-output rate (bars: {conf:.0%} Wilson interval)")
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Rates by category and probe")
    # Fixed margins rather than tight_layout: it costs more than drawing the figure.
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.27, right=0.97, top=1 - 0.45 / height, bottom=0.65 / height)
    return fig


def _numeric_key(key: Any) -> float:
    try:
        return float(key)
    except (TypeError, ValueError):
        return float("nan")


def temperature_figure(summary: Mapping[str, Any]) -> Any | None:
    """Rate by sampling temperature (harm categories) with its interval; None with fewer
    than two temperatures."""
    rows = sorted((g for g in summary.get("groups") or []
                   if g.get("by") == "temperature" and g.get("rate") is not None),
                  key=lambda g: _numeric_key(g.get("key")))
    if len(rows) < 2:
        return None
    fig = _figure(5.5, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    xs = [_numeric_key(g["key"]) for g in rows]
    rates = [float(g["rate"]) for g in rows]
    yerr = [[max(r - float(g["ci_low"]), 0.0) for r, g in zip(rates, rows, strict=True)],
            [max(float(g["ci_high"]) - r, 0.0) for r, g in zip(rates, rows, strict=True)]]
    ax.errorbar(xs, rates, yerr=yerr, fmt="o-", color="#2166ac", ecolor="#92c5de", capsize=3)
    overall = summary.get("overall") or {}
    for g in summary.get("groups") or []:
        if g.get("by") == "overall" and "max_rate" in g:
            ax.axhline(g["max_rate"], color="#b2182b", ls="--", lw=1,
                       label=f"overall max {g['max_rate']:.2%}")
            ax.legend(fontsize=7)
    if overall.get("rate") is not None:
        ax.set_title(f"Rate by temperature (overall {overall['rate']:.2%})", fontsize=10)
    ax.set_xlabel("temperature")
    ax.set_ylabel("harmful-output rate")
    _percent_axis(ax, "y")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def cross_rows(cells: Iterable[Any]) -> list[dict[str, Any]]:
    """summary.json's `context_category` rows from per-cell counts (objects with `context`,
    `category`, `n`, `n_harmful`, `n_safe`, like `harness.tally.CellCounts`): for summaries
    written before the field existed."""
    acc: dict[tuple[str, str], list[int]] = {}
    for c in cells:
        row = acc.setdefault((str(c.context), str(c.category)), [0, 0, 0])
        row[0] += int(c.n)
        # Scored as in the groups: harmful or safe (blocked, unclear and errors apart).
        row[1] += int(c.n_harmful) + int(c.n_safe)
        row[2] += int(c.n_harmful)
    return [{"context": a, "category": b, "n": n, "n_scored": m, "n_harmful": k,
             "rate": k / m if m else None} for (a, b), (n, m, k) in sorted(acc.items())]


def context_category_grid(rows: Iterable[Mapping[str, Any]]
                          ) -> tuple[list[str], list[str], list[list[float | None]]]:
    """(contexts, categories, rates[context][category]) from summary.json's
    `context_category` rows (None where a pair has no scored sample or was not run)."""
    k: dict[tuple[str, str], int] = {}
    n: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (str(r["context"]), str(r["category"]))
        k[key] = k.get(key, 0) + int(r["n_harmful"])
        n[key] = n.get(key, 0) + int(r["n_scored"])
    contexts = sorted({a for a, _ in n})
    categories = sorted({b for _, b in n})
    grid: list[list[float | None]] = [
        [(k[(a, b)] / n[(a, b)]) if n.get((a, b)) else None for b in categories]
        for a in contexts]
    return contexts, categories, grid


def heatmap_figure(rows: Iterable[Mapping[str, Any]]) -> Any | None:
    """Context x category heat map of rates from summary.json's `context_category` rows;
    None when the run has a single context and a single category (nothing to cross)."""
    contexts, categories, grid = context_category_grid(rows)
    if len(contexts) < 2 and len(categories) < 2:
        return None
    import numpy as np

    values = np.array([[np.nan if v is None else v for v in row] for row in grid], dtype=float)
    fig = _figure(max(4.5, 0.9 * len(categories) + 2.5), max(2.4, 0.45 * len(contexts) + 1.6))
    ax = fig.add_subplot(1, 1, 1)
    vmax = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    im = ax.imshow(values, cmap="Reds", vmin=0.0, vmax=max(vmax, 1e-9), aspect="auto")
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels(categories, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(contexts)))
    ax.set_yticklabels(contexts, fontsize=8)
    for i in range(len(contexts)):
        for j in range(len(categories)):
            v = values[i, j]
            text = "n/a" if np.isnan(v) else f"{100 * v:.1f}%"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if not np.isnan(v) and v > 0.6 * vmax else "black")
    cbar = fig.colorbar(im, ax=ax)
    from matplotlib.ticker import PercentFormatter

    cbar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Rate by context and category", fontsize=10)
    fig.tight_layout()
    return fig


def variant_figure(rows: Sequence[Mapping[str, Any]], max_rate: float | None = None,
                   title: str = "Exact prompts vs variant families") -> Any | None:
    """Bars of rate with intervals for the exact prompts and each variant (mutator) family.

    `rows`: dicts with `key`, `rate`, `ci_low`, `ci_high` (e.g. the summary's
    `mutator-family` groups, or an incident analysis' breakdown); the row keyed "(exact)"
    or "exact" is drawn first. None without rows.
    """
    rows = [r for r in rows if r.get("rate") is not None]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (str(r["key"]) not in ("(exact)", "exact", "none"),
                                       str(r["key"])))
    fig = _figure(max(4.5, 0.7 * len(rows) + 2), 3.4)
    ax = fig.add_subplot(1, 1, 1)
    xs = list(range(len(rows)))
    rates = [float(r["rate"]) for r in rows]
    colors = ["#542788" if str(r["key"]) in ("(exact)", "exact", "none") else "#8073ac"
              for r in rows]
    yerr = [[max(v - float(r["ci_low"]), 0.0) for v, r in zip(rates, rows, strict=True)],
            [max(float(r["ci_high"]) - v, 0.0) for v, r in zip(rates, rows, strict=True)]]
    ax.bar(xs, rates, color=colors, yerr=yerr, capsize=3, ecolor="#333333")
    if max_rate is not None:
        ax.axhline(max_rate, color="#b2182b", ls="--", lw=1, label=f"max {max_rate:.2%}")
        ax.legend(fontsize=7)
    ax.set_xticks(xs)
    ax.set_xticklabels([str(r["key"]) for r in rows], rotation=30, ha="right", fontsize=8)
    _percent_axis(ax, "y")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("harmful-output rate")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def figure_png(fig: Any) -> bytes:
    """PNG bytes of a figure."""
    buf = io.BytesIO()
    # PNG compression level 1 (of 9; Pillow's default is 6): a fifth to a quarter less time
    # per figure for files 2-7% larger (docs/performance.md, "Start-up and finish").
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 1})
    return buf.getvalue()
