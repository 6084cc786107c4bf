"""What a new incident suite will cost before it is written: its model calls per run
(`IncidentPlan`) and the samples per cell its exact prompts need."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import contexts
from harness.records import Probe
from harness.taxonomy import OVER_REFUSAL

__all__ = ["DEFAULT_SAMPLES", "DEFAULT_TEMPERATURES", "IncidentPlan", "control_probes",
           "default_samples", "detector_calls", "plan_incident"]

DEFAULT_SAMPLES = 5
DEFAULT_TEMPERATURES: tuple[float, ...] = (0.7,)


@dataclass(frozen=True)
class IncidentPlan:
    """How many model calls one run of a new incident suite makes (before it is written).

    Each sample is one model call on endpoints that ignore or reject `n` (llama.cpp, Ollama,
    Azure for some models); where `n` works, several samples share a request, but each is
    still generated and billed. Judges (`k` calls an output) and moderation detectors (one),
    when probes ask for them, add their own calls: `n_judge_calls`, `n_moderation_calls`
    (an upper bound: the judge cache skips outputs it has judged before).
    """

    n_exact: int
    n_variants: int
    n_controls: int
    n_contexts: int
    n_temperatures: int
    samples: int
    n_rewrite_calls: int = 0
    n_judge_calls: int = 0
    n_moderation_calls: int = 0

    @property
    def n_probes(self) -> int:
        return self.n_exact + self.n_variants + self.n_controls

    @property
    def run_samples(self) -> int:
        """Samples in one run: probes x contexts x temperatures x samples per cell."""
        return self.n_probes * self.n_contexts * self.n_temperatures * self.samples

    @property
    def calls(self) -> int:
        """Model calls the incident plans: one run's samples, its judge and moderation
        calls, and the rewrite requests."""
        return (self.run_samples + self.n_judge_calls + self.n_moderation_calls
                + self.n_rewrite_calls)

    def describe(self) -> str:
        """The product spelled out: "(2 exact + 40 variants + 12 controls) probes x ..."."""
        temps = "temperature" if self.n_temperatures == 1 else "temperatures"
        text = (f"({self.n_exact} exact + {self.n_variants} variants + {self.n_controls} "
                f"controls) probes x {self.n_contexts} contexts x {self.n_temperatures} "
                f"{temps} x {self.samples} samples per cell")
        extras = [f"{n:,} {what}" for n, what in (
            (self.n_judge_calls, "judge call(s)"),
            (self.n_moderation_calls, "moderation call(s)"),
            (self.n_rewrite_calls, "paraphrase/translate request(s)")) if n]
        if extras:
            text += f" = {self.run_samples:,} samples, plus " + ", ".join(extras)
        return text


def control_probes(path: Path | None) -> list[Probe]:
    """Over-refusal probes the suite will take from the controls file (none without one)."""
    if path is None:
        return []
    from harness.probes import load_probes

    return [p for p in load_probes(path) if p.category == OVER_REFUSAL]


def detector_calls(probes: Sequence[Probe]) -> tuple[int, int]:
    """(judge, moderation) model calls the detectors of `probes` make for one output each,
    summed over the probes (`harness.detectors.model_calls_per_output`)."""
    from harness.detectors import model_calls_per_output, specs_for

    judge = moderation = 0
    for probe in probes:
        for spec in specs_for(probe):
            if spec.name == "moderation":
                moderation += model_calls_per_output(spec)
            else:
                judge += model_calls_per_output(spec)
    return judge, moderation


def plan_incident(exact: Sequence[Probe], probes: Sequence[Probe], controls: Sequence[Probe],
                  n_rewrite_kinds: int, samples: int) -> IncidentPlan:
    """The plan of one run of the suite: `probes` (exact + mutator variants), `controls`
    and `n_rewrite_kinds` rewrites of each exact prompt (0: none requested)."""
    n_contexts = len(contexts.expand_matrix(contexts.DEFAULT_INCIDENT_MATRIX))
    per_probe = n_contexts * len(DEFAULT_TEMPERATURES) * samples
    n_rewrites = len(exact) * n_rewrite_kinds
    # Rewrite variants are made later (by the rewrite calls) but keep their parent's
    # expectation, so each exact prompt's detectors count once per rewrite kind too.
    judge, moderation = detector_calls([*probes, *controls, *(list(exact) * n_rewrite_kinds)])
    return IncidentPlan(
        n_exact=len(exact), n_variants=len(probes) - len(exact) + n_rewrites,
        n_controls=len(controls), n_contexts=n_contexts,
        n_temperatures=len(DEFAULT_TEMPERATURES), samples=samples, n_rewrite_calls=n_rewrites,
        n_judge_calls=judge * per_probe, n_moderation_calls=moderation * per_probe)


def default_samples(n_exact: int, max_rate: float, confidence_level: float = 0.95,
                    n_contexts: int | None = None,
                    n_temperatures: int = len(DEFAULT_TEMPERATURES)) -> int:
    """Samples per cell so that the exact prompts alone can show "below max_rate".

    With zero harmful samples the exact one-sided bound is 1 - alpha^(1/n) (statistics.md
    §2.2), so the exact set needs `zero_failure_n(max_rate)` samples in total (299 for 1%),
    spread over prompts x contexts x temperatures; never fewer than DEFAULT_SAMPLES.
    """
    from harness.stats import zero_failure_n

    if n_contexts is None:
        n_contexts = len(contexts.expand_matrix(contexts.DEFAULT_INCIDENT_MATRIX))
    cells = max(1, n_exact * n_contexts * n_temperatures)
    need = zero_failure_n(max_rate, confidence_level)
    return max(DEFAULT_SAMPLES, -(-need // cells))
