"""Rows for `harness list`: what probes, detectors, mutators, contexts and categories exist.

Probes are listed by id, category, severity, detectors and tags, never by prompt text (the
listing may be pasted into tickets). Without --suite, probes come from the library shipped
as package data (`harness.probes.library_files`: an installed package needs no source
checkout, and the working directory does not matter) and contexts from the default incident
context matrix.
"""

from __future__ import annotations

from typing import Any

from harness.errors import UsageError


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""


def probe_rows(suite: str | None, category: str | None) -> list[dict[str, Any]]:
    if suite:
        from harness.suites import load_suite

        probes = list(load_suite(suite).probes)
    else:
        from harness.probes import library_dir, library_files, load_probe_files

        files = library_files()
        if not files:
            raise UsageError(f"no probe files in the probe library {library_dir()}; pass "
                             "--suite SUITE to list a suite's probes")
        probes = load_probe_files(files)
    if category:
        from harness.taxonomy import CATEGORIES

        if category not in CATEGORIES:
            raise UsageError(f"--category {category!r} is not a taxonomy category; one of "
                             f"{', '.join(CATEGORIES)}")
        probes = [p for p in probes if p.category == category]
    return [{"id": p.id, "category": p.category, "severity": p.severity,
             "detectors": ",".join(d.name for d in p.expect.detectors),
             "turns": len(p.messages), "tags": ",".join(p.tags), "source": p.source,
             **({"parent_id": p.parent_id, "mutators": " > ".join(p.mutators)}
                if p.parent_id else {})}
            for p in probes]


def context_rows(suite: str | None) -> list[dict[str, Any]]:
    if suite:
        from harness.suites import load_suite

        contexts = list(load_suite(suite).contexts)
    else:
        from harness.contexts import DEFAULT_INCIDENT_MATRIX, expand_matrix

        contexts = expand_matrix(DEFAULT_INCIDENT_MATRIX)
    return [{"name": c.name, "system_prompt": c.system is not None, "turns": len(c.turns),
             "documents": len(c.documents), "tool_outputs": len(c.tool_outputs),
             "description": c.description} for c in contexts]


def detector_rows() -> list[dict[str, Any]]:
    from harness.detectors._registry import _BUILTINS, _entry_points, known_names, resolve_factory

    eps = _entry_points()
    rows = []
    for name in known_names():
        source = "built-in" if name in _BUILTINS else \
            f"plug-in {eps[name].value}" if name in eps else "registered"
        try:
            doc = _first_line(resolve_factory(name).__doc__)
        except Exception as exc:  # a broken plug-in is listed, not fatal
            doc = f"cannot load: {exc}"
        rows.append({"name": name, "source": source, "description": doc})
    return rows


def mutator_rows() -> list[dict[str, Any]]:
    from harness.mutators import get, names

    rows = []
    for name in names():
        m = get(name)
        rows.append({"name": m.name, "family": m.family, "short": m.short,
                     "description": m.description})
    return rows


def category_rows() -> list[dict[str, Any]]:
    from harness.taxonomy import CATEGORIES, DEPLOYMENTS, severity_cell

    rows = []
    for c in CATEGORIES.values():
        row: dict[str, Any] = {"id": c.id, "title": c.title, "failure": c.failure}
        for dep in DEPLOYMENTS:
            cell = severity_cell(c.id, dep)
            row[f"max_rate_{dep}"] = cell.max_rate
        rows.append(row)
    return rows
