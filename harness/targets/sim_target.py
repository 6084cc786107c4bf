"""The in-process simulated target `sim:<profile>`: the simulator without HTTP."""

from __future__ import annotations

import asyncio
import time
from datetime import date

from harness.errors import RegistryError, UsageError
from harness.records import Completion, CompletionRequest
from harness.sim.model import PROFILES, FilterMode, SimModel
from harness.sim.moderation import moderate
from harness.sim.routing import respond
from harness.targets.base import ModerationResult, TargetOptions


class SimTarget:
    """Runs `harness.sim.model.SimModel` in the event loop's thread (thousands of samples/s).

    A request without a seed uses seed 0, so a run is reproducible either way.
    """

    supports_n = True

    def __init__(
        self,
        profile: str = "vulnerable",
        *,
        as_of: date | None = None,
        epoch: date | None = None,
        filter_mode: FilterMode = "refuse",
    ) -> None:
        self.model = SimModel(profile, as_of, epoch, filter_mode=filter_mode)
        self.profile = profile
        self.name = f"sim:{profile}"
        self._calls = 0

    def __repr__(self) -> str:
        return f"SimTarget({self.model!r})"

    def describe(self) -> dict[str, object]:
        """Settings for the manifest."""
        return {
            "kind": "sim",
            "name": self.name,
            "profile": self.profile,
            "as_of": self.model.as_of.isoformat(),
            "epoch": self.model.epoch.isoformat(),
            "filter_mode": self.model.filter_mode,
            "model": self.model.model_name,
            "system_fingerprint": self.model.system_fingerprint,
            "n_batching": True,
        }

    async def complete(self, request: CompletionRequest) -> list[Completion]:
        """`request.n` simulated completions."""
        started = time.perf_counter()
        replies = respond(
            self.model, request.messages, temperature=request.temperature, n=request.n,
            seed=request.seed or 0, max_tokens=request.max_tokens,
        )
        self._calls += 1
        if self._calls % 64 == 0:
            # The simulator never awaits; yield now and then so other tasks are not starved.
            await asyncio.sleep(0)
        latency = time.perf_counter() - started
        tokens_in = sum(len(m.content) for m in request.messages) // 4 + 1
        return [
            Completion(
                text=r.text,
                finish_reason=r.finish_reason,
                model=self.model.model_name,
                system_fingerprint=self.model.system_fingerprint,
                blocked=r.blocked,
                tokens_in=tokens_in,
                tokens_out=len(r.text) // 4 + 1,
                latency_s=latency,
                attempt_s=latency,
                seed_sent=request.seed,
            )
            for r in replies
        ]

    async def moderate(self, text: str, *, model: str) -> ModerationResult:
        """The simulated moderation classifier's scores for `text` (`harness.sim.moderation`)."""
        result = moderate(text, model=model)
        first = result["results"][0]
        return ModerationResult(dict(first["category_scores"]), bool(first["flagged"]),
                                result.get("model"))

    async def aclose(self) -> None:
        """Nothing to release."""


def build(argument: str, options: TargetOptions) -> SimTarget:
    """Target kind `sim[:<profile>]` (registry factory): the simulator in process."""
    spec = f"sim:{argument}" if argument else "sim"
    if options.rpm is not None or options.tpm is not None:
        raise UsageError(f"--rpm/--tpm budget requests to an API (openai:<model>); {spec!r} "
                         "runs in this process without limits: drop them")
    profile = argument or "vulnerable"
    if profile not in PROFILES:
        raise RegistryError("sim profile", profile, PROFILES)
    if options.filter_mode not in ("refuse", "block"):
        raise RegistryError("sim filter mode", options.filter_mode, ("refuse", "block"))
    return SimTarget(profile, as_of=options.as_of, epoch=options.epoch,
                     filter_mode=options.filter_mode)  # type: ignore[arg-type]
