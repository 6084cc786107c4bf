"""`incident status`: find (or make) the latest run of each stage and analyse it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import (
    EXIT_INCONCLUSIVE,
    StoreError,
    UsageError,
)
from harness.incidents._analysis import IncidentAnalysis, _pct, analyse_incident
from harness.incidents._files import (
    INCIDENT_DIR,
    STAGES,
    read_incident_block,
    suite_path_for,
)
from harness.taxonomy import OVER_REFUSAL


@dataclass(frozen=True)
class StageStatus:
    """The latest run of one stage and its analysis (None when the stage has no run yet)."""

    stage: str
    run_id: str | None
    analysis: IncidentAnalysis | None


@dataclass(frozen=True)
class IncidentStatus:
    """What `harness incident status` prints."""

    name: str
    suite_path: Path
    stage: str
    history: list[dict[str, Any]]
    current: StageStatus
    stages: list[StageStatus]
    category: str
    max_rate: float

    @property
    def exit_code(self) -> int:
        if self.current.analysis is None:
            return EXIT_INCONCLUSIVE
        return self.current.analysis.exit_code

    def to_dict(self) -> dict[str, Any]:
        def one(s: StageStatus) -> dict[str, Any]:
            return {"stage": s.stage, "run_id": s.run_id,
                    **(s.analysis.to_dict() if s.analysis else {"conclusion": None})}

        return {"incident": self.name, "suite": str(self.suite_path), "stage": self.stage,
                "category": self.category, "max_rate": self.max_rate,
                "history": self.history, "current": one(self.current),
                "stages": [one(s) for s in self.stages], "exit_code": self.exit_code}


def _runs_of(name: str, results_dir: Path) -> list[Any]:
    from harness.store import find_runs

    out = []
    for run in find_runs(results_dir):
        inc = (run.manifest.get("suite") or {}).get("incident") or {}
        if inc.get("name") == name and run.summary is not None:
            out.append(run)
    return out


def _analyse_run(run: Any, block: Mapping[str, Any], category: str, max_rate: float,
                 over_refusal_max: float | None) -> IncidentAnalysis:
    from harness.store import records_frame

    inc = (run.manifest.get("suite") or {}).get("incident") or block
    exact_ids = inc.get("exact_ids") or block.get("exact_ids") or []
    frame = records_frame(list(run.records()))
    if len(frame) == 0:
        raise StoreError(f"{run.run_dir}: the run holds no sample")
    conf = float((run.manifest.get("settings") or {}).get("confidence_level", 0.95))
    return analyse_incident(frame, exact_ids, max_rate, conf, over_refusal_max)


def incident_status(name_or_path: str | Path, *, directory: str | Path = INCIDENT_DIR,
                    results_dir: str | Path = Path("results"), run: bool = False,
                    run_options: Any = None) -> IncidentStatus:
    """Status of an incident from its latest run (running it first when `run`).

    `run_options` is a `harness.run.RunOptions` (target, out_dir, ...) used with `run`.
    Raises UsageError when there is no run to read and `run` is false.
    """
    from harness import taxonomy

    path = suite_path_for(name_or_path, directory)
    doc, block = read_incident_block(path)
    name = str(block.get("name") or path.stem)
    category = str(block.get("category") or "dangerous-instructions")
    if run:
        from harness.run import RunOptions, run_suite
        from harness.suites import load_suite

        options = run_options or RunOptions(target="sim", out_dir=Path(results_dir))
        results_dir = options.out_dir
        run_suite(load_suite(path), options)
    rates = taxonomy.max_rates_for(str(doc.get("deployment", "general")), {})
    suite_rates = doc.get("max_rate") or {}
    max_rate = float(suite_rates.get(category, rates.get(category, rates["overall"])))
    or_max = float(suite_rates.get(OVER_REFUSAL, rates[OVER_REFUSAL]))
    runs = _runs_of(name, Path(results_dir))
    if not runs:
        raise UsageError(f"incident {name!r} has no finished run under {results_dir}; run it "
                         f"with `harness incident status {name} --run --target sim:patched` "
                         f"(or `harness run {path} --target ...`)")
    latest = runs[-1]
    stage = str(block.get("stage") or STAGES[0])
    history = list(block.get("stages") or [])
    current = StageStatus(
        str(((latest.manifest.get("suite") or {}).get("incident") or {}).get("stage") or stage),
        latest.run_id, _analyse_run(latest, block, category, max_rate, or_max))
    per_stage: list[StageStatus] = []
    for s in STAGES:
        of_stage = [r for r in runs
                    if ((r.manifest.get("suite") or {}).get("incident") or {}).get("stage") == s]
        if not of_stage:
            per_stage.append(StageStatus(s, None, None))
        elif of_stage[-1].run_id == latest.run_id:
            per_stage.append(current)
        else:
            per_stage.append(StageStatus(s, of_stage[-1].run_id, _analyse_run(
                of_stage[-1], block, category, max_rate, or_max)))
    return IncidentStatus(name, path, stage, history, current, per_stage, category, max_rate)


def render_status(status: IncidentStatus) -> str:
    """Plain-text (Markdown) status for a terminal or a ticket."""
    lines = [f"# Incident {status.name}: stage {status.stage}", ""]
    a = status.current.analysis
    lines.append(f"Latest run {status.current.run_id} (stage {status.current.stage}), "
                 f"category {status.category}, max rate {_pct(status.max_rate)}.")
    lines.append("")
    if a is not None:
        lines.append(f"**{a.conclusion}**: {a.message}")
        lines.append("")
        lines.append("| stage | run | exact rate | variant rate | gap (95% CI) | conclusion |")
        lines.append("|---|---|---|---|---|---|")
        for s in status.stages:
            if s.analysis is None:
                lines.append(f"| {s.stage} | (no run) | | | | |")
                continue
            sa = s.analysis
            ex = _pct(sa.exact["rate"]) if sa.exact else "n/a"
            va = _pct(sa.variants["rate"]) if sa.variants else "n/a"
            gp = (f"{100 * sa.gap['estimate']:+.1f} ({100 * sa.gap['ci_low']:+.1f} to "
                  f"{100 * sa.gap['ci_high']:+.1f})" if sa.gap else "n/a")
            lines.append(f"| {s.stage} | {s.run_id} | {ex} | {va} | {gp} | {sa.conclusion} |")
        lines.append("")
        if a.families:
            lines.append("Variants by mutator family (Wilson 95% CI; verdict from a clustered "
                         "bound, Bonferroni over families):")
            lines.append("")
            lines.append("| family | n | harmful | rate | CI | verdict |")
            lines.append("|---|---|---|---|---|---|")
            for r in a.families:
                lines.append(f"| {r['key']} | {r['n_scored']} | {r['n_harmful']} | "
                             f"{_pct(r['rate'])} | {_pct(r['ci_low'])}-{_pct(r['ci_high'])} | "
                             f"{r['verdict']} |")
            lines.append("")
        if a.mutators:
            lines.append("Which transforms still get through (variants containing each "
                         "mutator):")
            lines.append("")
            lines.append("| mutator | n | harmful | rate | CI |")
            lines.append("|---|---|---|---|---|")
            for r in a.mutators:
                lines.append(f"| {r['key']} | {r['n_scored']} | {r['n_harmful']} | "
                             f"{_pct(r['rate'])} | {_pct(r['ci_low'])}-{_pct(r['ci_high'])} |")
            lines.append("")
        if a.controls is not None:
            c = a.controls
            lines.append(f"Over-refusal controls: {_pct(c['rate'])} refused (CI "
                         f"{_pct(c['ci_low'])}-{_pct(c['ci_high'])}) against max "
                         f"{_pct(c['max_rate'])}: {c['verdict']}.")
            lines.append("")
    if status.history:
        lines.append("Stage history:")
        for h in status.history:
            note = f": {h.get('note')}" if h.get("note") else ""
            lines.append(f"- {h.get('at')} {h.get('stage')}{note}")
    return "\n".join(lines) + "\n"
