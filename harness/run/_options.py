"""The options of a run and what a finished run returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.plan import Shard
from harness.settings import Overrides
from harness.targets.base import Target

if TYPE_CHECKING:  # annotation only: the policy module pulls in openai and tenacity
    from harness.targets.retry import RetryPolicy

__all__ = ["RunOptions", "RunResult"]


@dataclass(frozen=True)
class RunOptions:
    """How to run a suite. `overrides` are flag values; environment HARNESS_* sit below them.

    `target` is a spec string (`sim:patched`, `openai:<model>`; see `harness.targets`) or a
    `Target` object, used as given. `target_options` are the options of the target's kind
    (`{"base_url": ..., "api_key_env": ...}` for the OpenAI kinds: `--base-url`,
    `--api-key-env`), checked by the registry against the options that kind takes.
    """

    target: str | Target = "sim"
    out_dir: Path = Path("results")
    target_options: Mapping[str, str] = field(default_factory=dict)
    overrides: Overrides = field(default_factory=Overrides)
    as_of: date | None = None
    epoch: date | None = None
    run_id: str | None = None
    progress: bool | None = None
    sequential: bool = False
    max_samples: int | None = None
    use_env: bool = True
    calibration: Path | None = None
    retry_errors: bool = True
    """On resume, sample again the samples that ended in error (their records are set aside
    in errors-retried.jsonl); False keeps them as they are."""
    shard: Shard | None = None
    """Sample only this part of the plan (`--shard I/N`); `harness merge` joins the parts."""
    rpm: float | None = None
    """Client-side budget of requests per minute for targets that send requests (`--rpm`)."""
    tpm: float | None = None
    """Client-side budget of tokens per minute (`--tpm`)."""
    retry_policy: RetryPolicy | None = None
    """The run's one retry policy (None: `RetryPolicy()`): the target's requests and the
    judge's and moderation's model calls all retry with it."""


@dataclass(frozen=True)
class RunResult:
    """What a finished run decided, and where its files are."""

    run_id: str
    run_dir: Path
    outcome: str
    exit_code: int
    summary: dict[str, Any]
