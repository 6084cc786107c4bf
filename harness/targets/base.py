"""The `Target` protocol: what the engine samples."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from harness.records import Completion, CompletionRequest

if TYPE_CHECKING:  # annotation only: importing the policy pulls in openai and tenacity
    from harness.targets.retry import RetryPolicy


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
    """What every target kind is given: the run's settings (each kind rejects the ones that
    do not apply to it) and `kind_options`, the options of the kind itself (`base_url`,
    `api_key_env` for the OpenAI kinds), already checked against the options its registry
    entry declares."""

    as_of: date | None = None
    epoch: date | None = None
    concurrency: int = 16
    filter_mode: str = "refuse"
    rpm: float | None = None
    """Client-side budget: requests per minute (`--rpm`; kinds that send HTTP requests)."""
    tpm: float | None = None
    """Client-side budget: tokens per minute (`--tpm`)."""
    retry_policy: RetryPolicy | None = None
    """The run's retry policy for kinds that send requests (None: `RetryPolicy()`); the
    run's judge and moderation detectors reach their models with the same one."""
    kind_options: Mapping[str, str] = field(default_factory=dict)
    """The kind's own options (name -> value; unset ones are left out)."""

    def option(self, name: str) -> str | None:
        """A kind option's value, or None when it was not given."""
        return self.kind_options.get(name)


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


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch job: `request.n` samples of the cell `cell_key` (its
    `CellKey.as_str()`), sample indexes `start` .. `start + request.n - 1`."""

    cell_key: str
    start: int
    request: CompletionRequest


@runtime_checkable
class BatchTarget(Protocol):
    """A target that answers a whole plan at once (a provider's Batch API).

    The run gives it every request first (`prepare`), which submits them as one job (or
    picks up the job a crashed run of the same folder submitted, recorded in `run_dir`),
    waits for it and keeps the answers; then the engine asks `complete` as for any target
    and labels the answers through the normal path. `consumed()` says the answers were all
    recorded, so a later resume submits a new job for what is still missing.
    """

    async def prepare(self, items: Sequence[BatchItem], run_dir: Path,
                      notify: Callable[[str], None]) -> None: ...

    def consumed(self) -> None: ...
