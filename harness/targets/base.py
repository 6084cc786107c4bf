"""The `Target` protocol: what the engine samples."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

from harness.records import Completion, CompletionRequest


@runtime_checkable
class Target(Protocol):
    """Something that answers chat conversations.

    `complete` returns exactly `request.n` completions. Implementations that cannot ask
    for several choices in one call set `supports_n = False`; the engine then sends
    one request per sample. Infrastructure failures raise `harness.errors`
    InfrastructureError subclasses after the shared retry policy; a provider content
    filter is reported as a Completion with `blocked=True`, not an exception.
    """

    name: str

    @property
    def supports_n(self) -> bool:
        """Whether one request may ask for several choices (`n`); may turn False mid-run."""
        ...

    async def complete(self, request: CompletionRequest) -> list[Completion]: ...

    async def aclose(self) -> None: ...

    def describe(self) -> dict[str, object]:
        """Settings safe to write to the manifest (never secrets)."""
        ...


@dataclass(frozen=True)
class TargetOptions:
    """Settings a target kind may take; each kind rejects the ones that do not apply to it."""

    base_url: str | None = None
    api_key_env: str | None = None
    as_of: date | None = None
    epoch: date | None = None
    concurrency: int = 16
    filter_mode: str = "refuse"


@dataclass(frozen=True)
class ModerationResult:
    """A moderation classifier's answer for one text."""

    category_scores: Mapping[str, float]
    flagged: bool | None
    model: str | None


@runtime_checkable
class ModerationTarget(Protocol):
    """A target that also classifies texts (a moderation endpoint); the simulator is one."""

    async def moderate(self, text: str, *, model: str) -> ModerationResult:
        """Category scores for `text`."""
        ...
