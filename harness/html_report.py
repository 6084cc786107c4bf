"""The run report as one self-contained HTML file (Jinja2 template, plots embedded as PNG).

Pure: a summary dict (summary.json, the contract) and optionally the run's per-cell counts
in, HTML text out; the caller writes the file. The page loads nothing from the network (no
scripts, fonts or style sheets outside the file) and contains no model output text unless
the caller passes `outputs` (what `harness report --include-outputs` reads from
samples.jsonl), in which case a warning banner says so.

Verdicts are written as sentences a lawyer could repeat: what was measured, the bound that
decided, the maximum, and the claim (docs/statistics.md for the methods).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report import OUTCOME_SENTENCES, conf_pct, pct, tokens_line, truncation_lines

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class EmbeddedFigure:
    """One figure of the page: its caption, alt text and PNG bytes as a data URI."""

    id: str
    title: str
    alt: str
    data_uri: str


def template_environment() -> Any:
    """The Jinja2 environment of harness pages (package templates, HTML autoescaped)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness", "data/templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["pct"] = pct
    return env


def embed(fig: Any, id: str, title: str, alt: str) -> EmbeddedFigure:
    """A matplotlib figure as an embedded PNG (the figure is closed afterwards)."""
    from harness.plots import figure_png

    data = base64.b64encode(figure_png(fig)).decode("ascii")
    return EmbeddedFigure(id, title, alt, f"data:image/png;base64,{data}")


def _quantity(row: Mapping[str, Any]) -> str:
    if row.get("failure") == "refusal":
        return "refusal rate on over-refusal controls"
    if row.get("label_quantity") == "non-refusal":
        # Only rule detectors labelled the group: what they measure is non-refusal.
        return "non-refusal rate (an upper bound on the harmful-output rate)"
    return str(row.get("quantity") or "harmful-output rate")


def group_name(row: Mapping[str, Any]) -> str:
    """How a group is named in prose."""
    if row.get("by") == "overall":
        return "all harm categories together"
    if row.get("by") == "category":
        return f"category {row['key']}"
    return f"{row.get('by')} {row.get('key')}"


def plain_verdict(row: Mapping[str, Any], confidence_level: float) -> str:
    """A gated group's verdict as one plain sentence with the deciding bound.

    E.g. "With 95% confidence, the harmful-output rate of category self-harm is at most 1.2%,
    below the maximum of 2%. Observed: 3 of 600 scored samples (0.50%)."
    """
    from harness.plots import deciding_bound

    conf = conf_pct(confidence_level)
    what = f"the {_quantity(row)} of {group_name(row)}"
    observed = (f"Observed: {row.get('n_harmful', 0):,} of {row.get('n_scored', 0):,} scored "
                f"samples ({pct(row.get('rate'))}).")
    if "max_rate" not in row:
        return f"{what[0].upper()}{what[1:]} is not gated. {observed}"
    mx = pct(row["max_rate"])
    bound = deciding_bound(row)
    verdict = row.get("verdict", "inconclusive")
    if verdict == "below":
        text = (f"With {conf} confidence, {what} is at most {pct(bound)}, below the maximum "
                f"of {mx}.")
    elif verdict == "above":
        if bound is not None and bound > row["max_rate"]:
            text = (f"With {conf} confidence, {what} is at least {pct(bound)}, above the "
                    f"maximum of {mx}.")
        else:
            text = (f"With {conf} confidence, {what} on this suite's own prompts is above the "
                    f"maximum of {mx} (exact binomial test, corrected for the number of gated "
                    "groups).")
    elif row.get("n_scored"):
        text = (f"The data cannot yet tell whether {what} is below the maximum of {mx}: "
                f"with {conf} confidence it is at most {pct(bound)}, which does not rule out "
                "exceeding the maximum.")
        hint = row.get("hint") or {}
        if hint.get("n"):
            kind = str(hint.get("kind") or "more samples")
            text += f" About {int(hint['n']):,} {kind} would likely settle it."
        elif row.get("more_samples"):
            text += f" About {row['more_samples']:,} more samples would likely settle it."
        elif row.get("note"):
            text += f" ({row['note']}.)"
    else:
        text = f"No sample of {group_name(row)} was scored, so nothing can be claimed about it."
    unscorable = int(row.get("n_unscorable") or 0)
    if unscorable and row.get("worst_case_high") is not None:
        observed += (f" {unscorable:,} further samples could not be scored (blocked, unclear "
                     f"or error); counted all as harmful, the bound would be "
                     f"{pct(row['worst_case_high'])}.")
    return f"{text} {observed}"


def _outcome_class(outcome: str) -> str:
    return {"holds": "ok", "breached": "bad", "inconclusive": "warn"}.get(outcome, "bad")


def build_figures(summary: Mapping[str, Any], cells: Iterable[Any] | None = None,
                  extra: Sequence[EmbeddedFigure] = ()) -> list[EmbeddedFigure]:
    """The report's embedded plots: forest, temperature, context x category, variants."""
    from harness import plots

    figures = [embed(plots.forest_figure(summary), "forest", "Rates by category and probe",
                     "Forest plot of harmful-output rates with intervals, the deciding bound "
                     "and the maximum for each gated group and the highest-rate probes")]
    temp = plots.temperature_figure(summary)
    if temp is not None:
        figures.append(embed(temp, "temperature", "Rate by temperature",
                             "Harmful-output rate with interval at each sampling temperature"))
    cross = summary.get("context_category")
    if cross is None and cells is not None:  # a summary from before the field existed
        cross = plots.cross_rows(cells)
    if cross:
        heat = plots.heatmap_figure(cross)
        if heat is not None:
            figures.append(embed(heat, "heatmap", "Rate by context and category",
                                 "Heat map of harmful-output rate for each context and "
                                 "category"))
    families = [g for g in summary.get("groups") or [] if g.get("by") == "mutator-family"]
    if families:
        overall = summary.get("overall") or {}
        fig = plots.variant_figure(families, overall.get("max_rate"),
                                   "Exact prompts vs variant families")
        if fig is not None:
            figures.append(embed(fig, "variants", "Exact prompts vs variant families",
                                 "Bar chart of the rate of the exact prompts and of each "
                                 "mutator family of variants"))
    figures.extend(extra)
    return figures


def render_html(summary: Mapping[str, Any], *, cells: Iterable[Any] | None = None,
                outputs: Sequence[Mapping[str, Any]] | None = None,
                extra_figures: Sequence[EmbeddedFigure] = ()) -> str:
    """The run's report.html.

    `cells`: the run's per-cell counts (`harness.tally.Tally.cells.values()`), used for the
    context x category heat map only when the summary has no `context_category` (older
    runs); `outputs`: sample dicts whose text the page may show (only when a person asked
    for it); `extra_figures`: more embedded plots (a watch timeline).
    """
    conf = float(summary["confidence_level"])
    groups = list(summary.get("groups") or [])
    gated = [dict(g, sentence=plain_verdict(g, conf)) for g in groups if "max_rate" in g]
    from harness.plots import deciding_bound

    for g in gated:
        g["deciding"] = deciding_bound(g)
    tables = []
    for by, title in (("category", "By category"), ("context", "By context"),
                      ("temperature", "By temperature"), ("severity", "By probe severity"),
                      ("mutator-family", "By mutator family"),
                      ("mutator", "By mutator chain")):
        rows = [g for g in groups if g.get("by") == by]
        if rows:
            tables.append({"by": by, "title": title, "rows": rows})
    probes = sorted((g for g in groups if g.get("by") == "probe"),
                    key=lambda g: (-(g.get("rate") or 0.0), str(g.get("key"))))[:25]
    env = template_environment()
    return str(env.get_template(TEMPLATE).render(
        summary=summary, conf=conf_pct(conf), outcome=summary.get("outcome", "error"),
        outcome_sentence=OUTCOME_SENTENCES.get(str(summary.get("outcome")), ""),
        outcome_class=_outcome_class(str(summary.get("outcome"))),
        gated=gated, tables=tables, probes=probes,
        figures=build_figures(summary, cells, extra_figures),
        gate=summary.get("gate") or {}, errors=summary.get("errors") or {},
        worst=summary.get("worst_probe"), corrected=summary.get("corrected") or [],
        models=summary.get("models") or {}, outputs=list(outputs) if outputs else None,
        notes=[line.removeprefix("- ").replace("`", "")
               for line in truncation_lines(groups)],
        tokens=(tokens_line(summary) or "").replace("`", "") or None,
    ))


REPORT_HTML = "report.html"


def write_html_report(run_dir: Path, summary: Mapping[str, Any],
                      cells: Iterable[Any] | None = None) -> Path:
    """Render and write `run_dir/report.html` (owner-readable, like report.md).

    The one I/O helper of this module, so run finishing code (run, resume, rescore) adds
    the HTML report with one call.
    """
    from harness.store import write_private_text

    path = Path(run_dir) / REPORT_HTML
    write_private_text(path, render_html(summary, cells=cells))
    return path
