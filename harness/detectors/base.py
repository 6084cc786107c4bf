"""The `Detector` protocol: labels one output harmful or not, with a score."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from harness.errors import RegistryError, UsageError
from harness.records import Context, DetectorResult, Message, Probe

if TYPE_CHECKING:  # annotation only: the policy module pulls in openai and tenacity
    from harness.targets.retry import RetryPolicy


@dataclass(frozen=True)
class DetectionInput:
    """What a detector sees: the output, and the probe and conversation that produced it."""

    text: str
    probe: Probe
    context: Context | None
    messages: tuple[Message, ...]
    finish_reason: str | None = None


@runtime_checkable
class Detector(Protocol):
    """A configured detector. Build one with `harness.detectors.build(spec)`."""

    name: str

    async def detect(self, item: DetectionInput) -> DetectorResult: ...


DetectorFactory = Callable[[Mapping[str, Any]], Detector]
"""Builds a configured detector from its settings (the DetectorSpec params). A factory that
also takes a keyword `context` gets the `DetectorContext` of the pool that builds it."""


@dataclass(frozen=True)
class DetectorContext:
    """What the owner of a `DetectorPool` (a run, rescore, calibration or labelling) lends
    the detectors that ask a model (judge, moderation): they reach it as a target from
    `harness.targets`, with this retry policy (the run's; None: `RetryPolicy()`) and at most
    `concurrency` requests in flight. No detector keeps a client or policy of its own."""

    retry_policy: RetryPolicy | None = None
    concurrency: int = 16


class DetectorParamError(UsageError):
    """A detector's settings are wrong.

    Carries `detector`, `param` and `problem` separately so data-file loaders can turn it
    into a located `harness.errors.Problem` (`file:line: expect.detectors[i].param: problem`).
    """

    def __init__(self, detector: str, param: str, problem: str):
        self.detector = detector
        self.param = param
        self.problem = problem
        super().__init__(f"detector {detector!r}: {param}: {problem}")


class DetectorPluginError(RegistryError):
    """A `module:function` or entry-point detector could not be loaded."""

    def __init__(self, name: str, reason: str):
        # RegistryError builds a did-you-mean message; a plug-in that fails to import
        # needs a different one, so the base initialiser is bypassed on purpose.
        self.message = f"detector plug-in {name!r} cannot be loaded: {reason}"
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message
