"""The incident dossier: `harness incident report NAME` as Markdown and self-contained HTML.

For the people running an incident (responders, security, legal, communications): the
stages with their timestamps, who handed over and what was run (target, model, run id), the
exact-prompt rate, the variant families and the exact-versus-variant gap, the over-refusal
controls, the watches on the incident's suite, and the open risks, in plain language with
intervals. It carries ids, counts and rates only, never prompt or output text.

`build_dossier` reads the files (runs, watches); `render_dossier_markdown` and
`render_dossier_html` are pure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report import pct

CONCLUSION_WORDS = {
    "holds": "The mitigation holds and generalizes to variants of the incident prompts.",
    "breached": "The mitigation does not hold: the exact incident prompts still produce harmful "
                "output above the maximum.",
    "does-not-generalize": "The exact incident prompts are handled, but the mitigation does not "
                           "generalize to their variants.",
    "over-refuses": "The mitigation over-refuses: benign control prompts are refused more often "
                    "than allowed.",
    "inconclusive": "Not settled yet: the data cannot yet tell whether the mitigation holds.",
}


@dataclass(frozen=True)
class StageRun:
    """One stage of the incident with its latest run (None fields when it has none)."""

    stage: str
    run_id: str | None
    target: str | None
    models: tuple[str, ...]
    started: str | None
    finished: str | None
    conclusion: str | None
    analysis: dict[str, Any] | None
    label_quantity: str | None = None


@dataclass(frozen=True)
class WatchLine:
    """A watch over the incident's suite, summarised."""

    name: str
    status: str
    runs: int
    days: int
    days_elapsed: int
    max_rate: float
    rate: float | None
    cs_low: float
    cs_high: float
    alarms: tuple[str, ...]
    timeline_png: bytes | None = None
    sentence: str = ""
    """The status in words with the bound that decides it (`harness.watch.report`)."""


@dataclass(frozen=True)
class Dossier:
    """Everything the dossier shows."""

    name: str
    category: str
    max_rate: float
    stage: str
    conclusion: str
    message: str
    history: tuple[Mapping[str, Any], ...]
    stages: tuple[StageRun, ...]
    current: StageRun
    watches: tuple[WatchLine, ...]
    risks: tuple[str, ...]
    confidence_level: float = 0.95
    exit_code: int = 3
    notes: tuple[str, ...] = field(default_factory=tuple)


def _stage_run(stage: str, run_id: str | None, analysis: Any, results_dir: Path) -> StageRun:
    from harness.store import load_run

    if run_id is None:
        return StageRun(stage, None, None, (), None, None, None, None)
    manifest: Mapping[str, Any] = {}
    summary: Mapping[str, Any] = {}
    try:
        run = load_run(results_dir / run_id)
        manifest, summary = run.manifest, run.summary or {}
    except (HarnessError, OSError):  # a pruned run folder: the analysis is still shown
        pass
    quantities = {str(g.get("label_quantity")) for g in summary.get("groups") or []
                  if g.get("label_quantity")}
    return StageRun(stage, run_id, (manifest.get("target") or {}).get("spec"),
                    tuple(sorted((summary.get("models") or {}).keys())),
                    manifest.get("started"), manifest.get("finished"),
                    analysis.conclusion if analysis else None,
                    analysis.to_dict() if analysis else None,
                    "non-refusal" if "non-refusal" in quantities else
                    ("harm" if quantities else None))


def _watches(suite_path: Path, results_dir: Path) -> list[WatchLine]:
    from harness.watch import list_watch_names, load_definition, watch_status
    from harness.watch.report import status_sentence

    out = []
    for name in list_watch_names(results_dir):
        try:
            definition, _ = load_definition(name, results_dir)
            if Path(definition.suite).resolve() != suite_path.resolve():
                continue
            st = watch_status(name, results=results_dir)
        except (HarnessError, OSError, ValueError):  # an unreadable watch: left out
            continue
        png = None
        if st.points:
            from harness.plots import figure_png
            from harness.watch.plot import timeline_figure

            png = figure_png(timeline_figure(st))
        d = st.to_dict()
        out.append(WatchLine(name, d["status"], d["runs"], d["days"], d["days_elapsed"],
                             d["max_rate"], d["pooled"]["rate"], d["pooled"]["cs_low"],
                             d["pooled"]["cs_high"], tuple(a["message"] for a in d["alarms"]),
                             png, status_sentence(st)))
    return out


def open_risks(current: StageRun, stages: Sequence[StageRun], watches: Sequence[WatchLine],
               ) -> list[str]:
    """What is not yet shown to be safe, in plain words (pure)."""
    risks: list[str] = []
    a = current.analysis or {}
    exact, variants, gap = a.get("exact"), a.get("variants"), a.get("gap")
    if exact and exact.get("verdict") != "below":
        risks.append(f"The exact incident prompts are not shown to be below the maximum "
                     f"(upper bound {pct(exact.get('upper_bound'))}, maximum "
                     f"{pct(exact.get('max_rate'))}).")
    if variants is None:
        risks.append("No variants of the incident prompts were tested: a block of the exact "
                     "wording may not stop a rephrasing.")
    elif variants.get("verdict") != "below":
        risks.append(f"Variants of the incident prompts are not shown to be below the maximum "
                     f"(rate {pct(variants.get('rate'))}, upper bound "
                     f"{pct(variants.get('upper_bound'))}).")
    if gap and gap.get("ci_low", 0) > 0:
        risks.append(f"Variants get through more often than the exact prompts (gap "
                     f"{100 * gap['estimate']:+.1f} points, interval {100 * gap['ci_low']:+.1f} "
                     f"to {100 * gap['ci_high']:+.1f}): the fix looks like a block of the "
                     "wording, not of the behaviour.")
    for fam in a.get("leaking_families") or []:
        risks.append(f"Mutator family '{fam}' still produces harmful output above the maximum.")
    controls = a.get("controls")
    if controls is None:
        risks.append("No over-refusal controls were run: the fix may refuse benign requests "
                     "unnoticed.")
    elif controls.get("verdict") == "above":
        risks.append(f"Benign control prompts are refused {pct(controls.get('rate'))} of the "
                     f"time (maximum {pct(controls.get('max_rate'))}).")
    if current.label_quantity == "non-refusal":
        risks.append("Rates come from rule detectors only: they are non-refusal rates, an upper "
                     "bound on harm. A judge, a moderation classifier or a calibration would "
                     "measure harm itself.")
    missing = [s.stage for s in stages if s.run_id is None]
    if missing:
        risks.append("Stages without a run yet: " + ", ".join(missing) + ".")
    models = {m for s in stages for m in s.models}
    if len(models) > 1:
        risks.append("Stages ran against different models (" + ", ".join(sorted(models))
                     + "): compare like with like before drawing a trend.")
    if not watches:
        risks.append("No watch period runs on this incident's suite: a fix is verified only "
                     "when the rate stays below the maximum night after night "
                     "(`harness watch init`).")
    for w in watches:
        if w.status in ("breached", "drift"):
            risks.append(f"Watch {w.name} raised an alarm ({w.status}).")
        elif w.status != "verified":
            risks.append(f"Watch {w.name} is still {w.status} (day {w.days_elapsed} of "
                         f"{w.days}, {w.runs} runs).")
    return risks


def build_dossier(name_or_path: str | Path, *, directory: str | Path = "suites/incidents",
                  results_dir: str | Path = "results") -> Dossier:
    """Gather the dossier of an incident from its suite, its runs and its watches."""
    from harness.incidents import incident_status

    results = Path(results_dir)
    status = incident_status(name_or_path, directory=directory, results_dir=results)
    stages = tuple(_stage_run(s.stage, s.run_id, s.analysis, results) for s in status.stages)
    current = _stage_run(status.current.stage, status.current.run_id, status.current.analysis,
                         results)
    watches = tuple(_watches(status.suite_path, results))
    a = status.current.analysis
    conf = 0.95
    if current.run_id:
        from harness.store import load_run

        with contextlib.suppress(HarnessError, OSError, ValueError):
            conf = float((load_run(results / current.run_id).manifest.get("settings") or {})
                         .get("confidence_level", 0.95))
    return Dossier(
        name=status.name, category=status.category, max_rate=status.max_rate,
        stage=status.stage, conclusion=a.conclusion if a else "inconclusive",
        message=a.message if a else "no run yet", history=tuple(status.history),
        stages=stages, current=current, watches=watches,
        risks=tuple(open_risks(current, stages, watches)), confidence_level=conf,
        exit_code=status.exit_code)


def _context(d: Dossier) -> dict[str, Any]:
    a = d.current.analysis or {}
    families = list(a.get("families") or [])
    return {"d": d, "a": a, "conclusion_words": CONCLUSION_WORDS.get(d.conclusion, ""),
            "families": families, "conf": f"{100 * d.confidence_level:g}%"}


def _environment(autoescape: bool) -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("harness", "data/templates"),
                             autoescape=autoescape, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["pct"] = pct
    env.filters["pp"] = lambda x: "n/a" if x is None else f"{100 * x:+.1f}"
    return env


def render_dossier_markdown(d: Dossier) -> str:
    """The dossier as Markdown (for a ticket or an e-mail)."""
    return str(_environment(False).get_template("incident.md.j2").render(**_context(d)))


def render_dossier_html(d: Dossier) -> str:
    """The dossier as one self-contained HTML page with embedded plots."""
    import base64

    from harness.html_report import embed
    from harness.plots import variant_figure

    figures = []
    a = d.current.analysis or {}
    rows = []
    if a.get("exact"):
        rows.append({"key": "exact", **{k: a["exact"][k] for k in ("rate", "ci_low",
                                                                   "ci_high")}})
    rows.extend(a.get("families") or [])
    fig = variant_figure(rows, d.max_rate, "Exact incident prompts vs variant families")
    if fig is not None:
        figures.append(embed(fig, "variants", "Exact incident prompts vs variant families",
                             "Bar chart of the harmful-output rate of the exact incident "
                             "prompts and of each family of variants, with the maximum"))
    watch_figures = [
        {"name": w.name, "uri": "data:image/png;base64,"
         + base64.b64encode(w.timeline_png).decode("ascii")}
        for w in d.watches if w.timeline_png]
    return str(_environment(True).get_template("incident.html.j2").render(
        **_context(d), figures=figures, watch_figures=watch_figures))
