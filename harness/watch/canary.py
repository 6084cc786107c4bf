"""The behavioural fingerprint: fixed canary prompts at temperature 0 with a fixed seed.

Endpoints such as llama.cpp's server send no `system_fingerprint` and answer to a model
alias, so a swapped model behind the same name is invisible in the records. Each night the
watch sends the same few benign prompts (`harness/data/canaries.jsonl`) at temperature 0
with one fixed seed and hashes the answers; a different hash means the deployment answers
differently, and the watch raises "model behaviour changed" and starts a new segment, as a
changed fingerprint does. Greedy decoding with a fixed seed repeats itself on a fixed
deployment; a backend whose batching is not deterministic can change a hash without a
model change (a false alarm that says so), never the reverse.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from importlib import resources

from harness.records import CompletionRequest, Message
from harness.targets.base import Target

CANARY_SEED = 20240601
CANARY_MAX_TOKENS = 48


@dataclass(frozen=True)
class CanaryResult:
    """The behavioural fingerprint of one night and what the endpoint reported."""

    behaviour: str
    """sha256 (first 16 hex digits) of the canary answers, in prompt order."""
    n_prompts: int
    models: tuple[str, ...]
    fingerprints: tuple[str, ...]


def canary_prompts() -> tuple[tuple[str, str], ...]:
    """(id, prompt) of the canaries shipped with the package."""
    text = resources.files("harness").joinpath("data/canaries.jsonl").read_text("utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return tuple((str(r["id"]), str(r["prompt"])) for r in rows)


def behaviour_hash(answers: list[str]) -> str:
    """The fingerprint of a list of answers (whitespace at the ends ignored)."""
    h = hashlib.sha256()
    for a in answers:
        h.update(a.strip().encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


async def _ask_all(target: Target) -> CanaryResult:
    answers: list[str] = []
    models: set[str] = set()
    fps: set[str] = set()
    try:
        prompts = canary_prompts()
        for _id, prompt in prompts:
            req = CompletionRequest(messages=(Message("user", prompt),), temperature=0.0,
                                    max_tokens=CANARY_MAX_TOKENS, n=1, seed=CANARY_SEED)
            (c,) = (await target.complete(req))[:1]
            answers.append("<blocked>" if c.blocked else c.text)
            if c.model:
                models.add(c.model)
            if c.system_fingerprint:
                fps.add(c.system_fingerprint)
    finally:
        await target.aclose()
    return CanaryResult(behaviour_hash(answers), len(prompts), tuple(sorted(models)),
                        tuple(sorted(fps)))


def ask_canaries(target: Target) -> CanaryResult:
    """Send the canaries to a target (blocking) and hash the answers; closes the target.

    Raises the target's InfrastructureError when it cannot be reached.
    """
    return asyncio.run(_ask_all(target))
