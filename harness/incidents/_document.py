"""The YAML document of an incident suite (pure), and the stages an incident moves through."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from harness import contexts, mutators
from harness.incidents._plan import DEFAULT_SAMPLES, DEFAULT_TEMPERATURES
from harness.taxonomy import OVER_REFUSAL

__all__ = ["STAGES", "dump_suite_yaml", "now_iso", "suite_document"]

STAGES: tuple[str, ...] = ("stop-the-bleed", "fan-out", "fix-at-source")


def now_iso(now: datetime | None = None) -> str:
    """UTC timestamp with seconds (the one clock reading of incident files)."""
    return (now or datetime.now(UTC)).isoformat(timespec="seconds")


def suite_document(name: str, *, category: str, deployment: str, probes_file: str,
                   exact_ids: Sequence[str], variants: int, seed: int,
                   max_rate: Mapping[str, float], controls: str | None,
                   families: Sequence[str] | None, created: str, prompts_file: str,
                   samples: int = DEFAULT_SAMPLES,
                   temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
                   rewrites: Sequence[str] = ()) -> dict[str, Any]:
    """The YAML mapping of an incident suite (pure)."""
    probes: list[Any] = [probes_file]
    if controls:
        probes.append({"file": controls, "categories": [OVER_REFUSAL]})
    return {
        "name": f"incident-{name}",
        "description": f"Incident {name}: {len(exact_ids)} exact prompt(s), {variants} "
                       f"variant(s) each, the default incident context matrix"
                       + (" and over-refusal controls" if controls else "") + ".",
        "deployment": deployment,
        "probes": probes,
        "context_matrix": _plain(contexts.DEFAULT_INCIDENT_MATRIX),
        "temperatures": list(temperatures),
        "samples": samples,
        "seed": seed,
        "max_rate": dict(max_rate),
        "confidence_level": 0.95,
        "gate": {"method": "clopper-pearson", "cluster": True, "multiplicity": "holm"},
        "incident": {
            "name": name,
            "created": created,
            "category": category,
            "stage": STAGES[0],
            "stages": [{"stage": STAGES[0], "at": created, "note": "incident opened"}],
            "exact_ids": list(exact_ids),
            "variants_per_prompt": variants,
            "mutator_families": list(families) if families else
            [f for f in mutators.FAMILIES if f != "rewrite"],
            "rewrites": list(rewrites),
            "seed": seed,
            "prompts_file": prompts_file,
            "probes_file": probes_file,
        },
    }


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def dump_suite_yaml(doc: Mapping[str, Any]) -> str:
    """YAML text of a suite document, keys in the given order, with a header comment."""
    header = ("# Incident suite written by `harness incident new`; the `incident:` block is "
              "updated by\n# `harness incident stage`. Edit thresholds or settings freely.\n")
    return header + yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True, width=100)
