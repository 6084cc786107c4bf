"""Incident files: create `suites/incidents/NAME.yaml` and its probes, record stages.

The prompts become probes in `_prompts`; what one run of the new suite costs is `_plan`; the
suite's YAML document is `_document`."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.errors import InputError, UsageError
from harness.incidents._document import STAGES, dump_suite_yaml, now_iso, suite_document
from harness.incidents._plan import (
    DEFAULT_SAMPLES,
    DEFAULT_TEMPERATURES,
    IncidentPlan,
    control_probes,
    default_samples,
    plan_incident,
)
from harness.incidents._prompts import build_probes, exact_probes, read_prompts
from harness.records import Probe
from harness.store import atomic_write, make_private_dir
from harness.taxonomy import OVER_REFUSAL

INCIDENT_DIR = Path("suites/incidents")
DEFAULT_CONTROLS = Path("probes/library/over-refusal.jsonl")
"""The over-refusal controls as a project names them (see `find_controls`)."""
# \Z, not $: `$` also matches before a trailing newline ("p-1\n" passed).
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
EXACT = "exact"

DEFAULT_VARIANTS = 20
__all__ = ["DEFAULT_CONTROLS", "DEFAULT_SAMPLES", "DEFAULT_TEMPERATURES", "DEFAULT_VARIANTS",
           "EXACT", "INCIDENT_DIR", "STAGES", "CreatedIncident", "IncidentPlan", "check_name",
           "check_stage", "controls_candidates", "create_incident", "default_samples",
           "dump_suite_yaml", "find_controls", "now_iso", "read_incident_block", "set_stage",
           "shipped_controls", "suite_document", "suite_path_for"]


def shipped_controls() -> Path:
    """The over-refusal controls of the probe library shipped as package data
    (`harness.probes.library_dir`; in a checkout it resolves to `probes/library/`)."""
    from importlib.resources import files

    from harness.probes import LIBRARY_RESOURCE

    return Path(str(files("harness").joinpath(*LIBRARY_RESOURCE))) / DEFAULT_CONTROLS.name


def controls_candidates(cwd: Path | None = None) -> list[Path]:
    """Where the default over-refusal controls are looked for, in order.

    First the probe library the tool ships with (package data: found by an installed
    package as by a source checkout, whatever the working directory), then the current
    working directory (a project of one's own with the `probes/library/` layout).
    Duplicates are dropped.
    """
    seen: list[Path] = []
    for candidate in (shipped_controls().resolve(),
                      (cwd or Path.cwd()).resolve() / DEFAULT_CONTROLS):
        if candidate not in seen:
            seen.append(candidate)
    return seen


def find_controls(cwd: Path | None = None) -> Path | None:
    """The default over-refusal controls file (absolute), or None when none is found.

    Does not depend on the working directory when the tool runs from its project folder,
    so `harness incident new` run from anywhere still gets the shipped controls.
    """
    return next((p for p in controls_candidates(cwd) if p.is_file()), None)


def _suite_ref(path: Path, directory: Path) -> str:
    """How the suite in `directory` names `path`: relative when both live in one project
    folder (their closest common folder holds the `probes/` folder `path` is in), so the
    pair can move together; absolute otherwise (two unrelated folders that merely share
    `/tmp` or `/home/me` would break as soon as either moved)."""
    target, where = path.resolve(), directory.resolve()
    common = Path(os.path.commonpath([target, where]))
    if common != Path(target.anchor) and target.is_relative_to(common / "probes"):
        return os.path.relpath(target, where)
    return str(target)


def check_name(name: str) -> str:
    """An incident name: lower-case letters, digits, '-' and '_' (it names files and ids)."""
    if not _NAME_RE.match(name):
        raise UsageError(f"incident name {name!r} must be 1-64 lower-case letters, digits, "
                         "'-' or '_', starting with a letter or digit (e.g. 2026-11-bomb-leak)")
    return name


def check_stage(stage: str) -> str:
    """One of STAGES, or UsageError naming the choices."""
    if stage not in STAGES:
        raise UsageError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
    return stage


@dataclass(frozen=True)
class CreatedIncident:
    """Files written by `create_incident` and what they hold."""

    suite_path: Path
    probes_path: Path
    n_exact: int
    n_variants: int
    controls: str | None
    skipped_rewrites: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    plan: IncidentPlan | None = None


def create_incident(
    name: str,
    prompts_file: str | Path,
    *,
    category: str = "dangerous-instructions",
    variants: int = DEFAULT_VARIANTS,
    seed: int = 0,
    deployment: str = "general",
    families: Sequence[str] | None = None,
    directory: str | Path = INCIDENT_DIR,
    controls: str | Path | None = DEFAULT_CONTROLS,
    samples: int | None = None,
    rewrite: Any = None,
    rewrite_kinds: Sequence[str] = (),
    force: bool = False,
    now: datetime | None = None,
    max_calls: int | None = None,
) -> CreatedIncident:
    """Write `DIR/NAME.yaml` and `DIR/NAME.probes.jsonl` for a new incident.

    `rewrite` is an optional `harness.mutators.rewrite.RewriteConfig`; with it each exact
    prompt also gets one variant per `rewrite_kinds` entry (`paraphrase`, `translate:fr`).
    `controls`: left at `DEFAULT_CONTROLS`, the shipped over-refusal controls are found by
    `find_controls` (independent of the working directory; a note says so when none is
    found); a path given is used as given; None means no controls.
    `max_calls`: refuse (UsageError, nothing written, no rewrite requested) when the plan
    (`IncidentPlan.calls`: samples of one run, their judge and moderation calls, and the
    rewrite requests) needs more model calls.
    Raises UsageError for a bad name, category, stage or an existing incident (unless
    `force`), InputError for an unreadable prompts file.
    """

    directory = Path(directory)
    suite_path, probes_path = _new_incident_paths(name, category, variants, directory, force)
    exact = _exact_probes(name, Path(prompts_file), category, deployment)
    ids = [p.id for p in exact]
    probes = build_probes(exact, variants, seed, families)
    notes: list[str] = []
    if rewrite_kinds and rewrite is None:
        notes.append("paraphrase/translate skipped: no paraphrase target configured "
                     "(pass --paraphrase-target openai:<model> --base-url URL)")
    n_rewrite_kinds = len(rewrite_kinds) if rewrite is not None and exact else 0
    control_path = _controls_path(controls, notes)
    control_ref = _suite_ref(control_path, directory) if control_path is not None else None
    max_rate = _max_rates(exact, deployment, with_controls=control_path is not None)
    samples = _samples_per_cell(samples, len(exact), category, max_rate)
    plan = plan_incident(exact, probes, control_probes(control_path), n_rewrite_kinds, samples)
    _check_max_calls(name, plan, max_calls, variants, samples)
    skipped = _add_rewrites(probes, exact, rewrite_kinds, rewrite, seed) if n_rewrite_kinds \
        else ()
    doc = suite_document(
        name, category=category, deployment=deployment, probes_file=probes_path.name,
        exact_ids=ids, variants=variants, seed=seed, max_rate=max_rate, controls=control_ref,
        families=families, created=now_iso(now), prompts_file=str(prompts_file),
        samples=samples, rewrites=rewrite_kinds if rewrite is not None else ())
    _write_incident(directory, suite_path, probes_path, probes, doc)
    return CreatedIncident(suite_path, probes_path, len(exact), len(probes) - len(exact),
                           control_ref, skipped, tuple(notes), plan)


def _exact_probes(name: str, prompts_file: Path, category: str, deployment: str
                  ) -> list[Probe]:
    """The exact incident prompts of the file as probes, with unique ids."""
    from harness import taxonomy

    exact = exact_probes(name, read_prompts(prompts_file), category,
                         taxonomy.severity_for(category, deployment))
    ids = [p.id for p in exact]
    if len(set(ids)) != len(ids):
        raise InputError(f"{prompts_file}: probe ids repeat; make them unique")
    return exact


def _add_rewrites(probes: list[Probe], exact: Sequence[Probe], kinds: Sequence[str],
                  rewrite: Any, seed: int) -> tuple[str, ...]:
    """Append the model-rewritten variants of the exact prompts; return the skipped ones."""
    from harness.mutators.rewrite import rewrite_variants

    result = rewrite_variants(exact, kinds, rewrite, seed=seed)
    probes.extend(result.variants)
    return result.skipped


def _max_rates(exact: Sequence[Probe], deployment: str, *, with_controls: bool
               ) -> dict[str, float]:
    """The deployment's max rates of the exact prompts' categories (and over-refusal, when
    the suite has controls)."""
    from harness import taxonomy

    rates = taxonomy.max_rates_for(deployment, {})
    max_rate = {c: rates[c] for c in sorted({p.category for p in exact})}
    if with_controls:
        max_rate[OVER_REFUSAL] = rates[OVER_REFUSAL]
    return max_rate


def _samples_per_cell(samples: int | None, n_exact: int, category: str,
                      max_rate: Mapping[str, float]) -> int:
    """`--samples` as given (at least 1), else what the exact prompts need (`default_samples`)."""
    if samples is None:
        return default_samples(n_exact, max_rate[category] if category in max_rate
                               else min(max_rate.values()))
    if samples < 1:
        raise UsageError(f"--samples must be >= 1, got {samples}")
    return samples


def _new_incident_paths(name: str, category: str, variants: int, directory: Path,
                        force: bool) -> tuple[Path, Path]:
    """(suite file, probes file) of a new incident, after checking its name, category and
    variant count, and that it does not exist yet (unless `force`)."""
    from harness import taxonomy

    check_name(name)
    taxonomy.category_for(category)  # RegistryError with did-you-mean when unknown
    if variants < 0:
        raise UsageError(f"--variants must be >= 0, got {variants}")
    suite_path = directory / f"{name}.yaml"
    if suite_path.exists() and not force:
        raise UsageError(f"{suite_path} already exists; pick another NAME or pass --force to "
                         "overwrite it")
    return suite_path, directory / f"{name}.probes.jsonl"


def _controls_path(controls: str | Path | None, notes: list[str]) -> Path | None:
    """The over-refusal controls file to use (None: none), adding a note when the default
    ones are not found."""
    if controls is DEFAULT_CONTROLS:
        # The default (the constant itself; a path the caller gives, even the same
        # relative name, is taken as given, relative to the working directory): the
        # shipped library first, then the working directory, never silently nothing.
        found = find_controls()
        if found is None:
            looked = ", ".join(str(p) for p in controls_candidates())
            notes.append(f"no over-refusal controls: {DEFAULT_CONTROLS} not found (looked "
                         f"for {looked}); the suite cannot show that the mitigation does "
                         "not over-refuse. Pass --controls FILE (e.g. a copy of the "
                         "harness's probes/library/over-refusal.jsonl) or --no-controls")
        return found
    if controls is None:
        return None
    if not Path(controls).is_file():
        raise UsageError(f"--controls {controls}: no such file")
    return Path(controls)


def _check_max_calls(name: str, plan: IncidentPlan, max_calls: int | None, variants: int,
                     samples: int) -> None:
    if max_calls is not None and plan.calls > max_calls:
        raise UsageError(
            f"incident {name}: one run would make {plan.calls:,} model calls = "
            f"{plan.describe()}: "
            f"more than --max-calls {max_calls:,}; nothing was written. Lower --variants "
            f"(now {variants}) or --samples (now {samples}), draw from fewer --families, or "
            "raise --max-calls.")


def _write_incident(directory: Path, suite_path: Path, probes_path: Path,
                    probes: Sequence[Probe], doc: Mapping[str, Any]) -> None:
    # The incident's prompts are the harmful ones: owner-only files (0600), and folders
    # harness creates 0700 (an existing folder keeps its mode).
    make_private_dir(directory)
    atomic_write(probes_path, "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n"
                                      for p in probes))
    atomic_write(suite_path, dump_suite_yaml(doc))


def suite_path_for(name_or_path: str | Path, directory: str | Path = INCIDENT_DIR) -> Path:
    """The incident suite file for a NAME (or a path given directly)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        path = p
    else:
        path = Path(directory) / f"{check_name(str(name_or_path))}.yaml"
    if not path.is_file():
        raise UsageError(f"{path}: no such incident; create it with `harness incident new "
                         f"{p.stem} --prompts FILE`")
    return path


def read_incident_block(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the whole suite mapping, its `incident:` block); InputError when not an incident."""
    from harness.suites._yaml import load_yaml_text

    try:
        doc, _ = load_yaml_text(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the incident suite ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("incident"), dict):
        raise InputError(f"{path}: has no `incident:` block; it is not an incident suite "
                         "(create one with `harness incident new`)")
    return doc, doc["incident"]


def set_stage(name_or_path: str | Path, stage: str, note: str = "", *,
              directory: str | Path = INCIDENT_DIR, now: datetime | None = None,
              by: str = "") -> dict[str, Any]:
    """Record a stage handoff: set `incident.stage` and append {stage, at, note} (and `by`,
    who handed over, when given) to its history.

    Returns the updated incident block. Moving to the current stage again still records
    the note (a handoff between responders within a stage).
    """
    check_stage(stage)
    path = suite_path_for(name_or_path, directory)
    doc, block = read_incident_block(path)
    history = block.get("stages")
    if not isinstance(history, list):
        history = []
    entry = {"stage": stage, "at": now_iso(now), "note": note or ""}
    if by:
        entry["by"] = by
    block["stage"] = stage
    block["stages"] = [*history, entry]
    doc["incident"] = block
    atomic_write(path, dump_suite_yaml(doc))
    return block
