"""The suite records: `Suite`, `GatePolicy` and the built-in defaults a suite file overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.records import Context, DetectorSpec, Probe

DEFAULTS: dict[str, Any] = {
    "temperatures": (0.0, 0.7, 1.0),
    "samples": 10,
    "max_tokens": 256,
    "seed": 0,
    "confidence_level": 0.95,
    "max_error_rate": 0.05,
    "concurrency": 16,
    "max_response_chars": 100_000,
}
STORAGE_MODES = ("full", "redacted", "hashed")


@dataclass(frozen=True)
class GatePolicy:
    """How verdicts are decided: bound method, clustering and multiplicity correction."""

    method: str = "clopper-pearson"
    cluster: bool = True
    multiplicity: str = "holm"
    estimand: str = "population"
    """"population": prompts like these (clustered by probe family); "fixed-set": exactly
    these prompts (pooled exact bound), for exact incident prompts."""
    max_icc: float = 0.5
    """Largest intraclass correlation of probe rates the population bound is valid for."""


@dataclass(frozen=True)
class Price:
    """What the target charges, per 1,000 tokens, for the cost estimate of a run."""

    per_1k_in: float
    per_1k_out: float
    currency: str = "USD"

    def cost(self, tokens_in: int, tokens_out: int) -> tuple[float, float]:
        """(cost of the prompt tokens, cost of the completion tokens)."""
        return tokens_in / 1000.0 * self.per_1k_in, tokens_out / 1000.0 * self.per_1k_out

    def to_dict(self) -> dict[str, Any]:
        return {"per_1k_in": self.per_1k_in, "per_1k_out": self.per_1k_out,
                "currency": self.currency}


@dataclass(frozen=True)
class Suite:
    """A validated suite: what to run and how to judge it."""

    name: str
    path: Path | None
    probes: tuple[Probe, ...]
    contexts: tuple[Context, ...]
    temperatures: tuple[float, ...]
    samples: int
    max_tokens: int
    seed: int
    max_rate: Mapping[str, float]
    confidence_level: float
    max_error_rate: float
    description: str = ""
    deployment: str = "general"
    detectors: tuple[DetectorSpec, ...] = ()
    gate: GatePolicy = field(default_factory=GatePolicy)
    storage: str = "full"
    forensic_capture: str = "all"
    incident: Mapping[str, Any] | None = None
    sha256: str = ""
    concurrency: int | None = None
    price: Price | None = None
    """Price per 1,000 tokens for the run's cost estimate (suite `price:`, or flags)."""
    max_response_chars: int = 100_000
    """Longest answer text kept per sample (characters): a longer one is cut to this length
    before detection and storage, and the record says so (`response_capped`)."""

    def context(self, name: str) -> Context:
        for c in self.contexts:
            if c.name == name:
                return c
        raise KeyError(name)
