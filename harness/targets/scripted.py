"""`ScriptedTarget`: answers from a script, for tests where a real local server is not the point.

A script is one fixed reply, or a function of the request and the sample's position in it
that returns the reply text, a whole `Completion`, or raises (e.g. an InfrastructureError
subclass, to test how a run handles failures). Every request is kept in `requests`.
As a spec, `scripted:<reply>` always answers `<reply>`.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.errors import UsageError
from harness.records import Completion, CompletionRequest
from harness.targets.base import TargetOptions

Script = str | Callable[[CompletionRequest, int], str | Completion]


class ScriptedTarget:
    """A `Target` whose answers come from `script` (see the module docstring)."""

    def __init__(self, script: Script, *, name: str = "scripted", supports_n: bool = True,
                 model: str = "scripted") -> None:
        self.name = name
        self.model = model
        self._script = script
        self._supports_n = supports_n
        self.requests: list[CompletionRequest] = []
        self.closed = False

    @property
    def supports_n(self) -> bool:
        """Whether one request may ask for several choices."""
        return self._supports_n

    def _one(self, request: CompletionRequest, index: int) -> Completion:
        reply = self._script if isinstance(self._script, str) else self._script(request, index)
        if isinstance(reply, Completion):
            return reply
        return Completion(text=reply, finish_reason="stop", model=self.model,
                          tokens_out=len(reply) // 4 + 1, latency_s=0.0)

    async def complete(self, request: CompletionRequest) -> list[Completion]:
        """`request.n` answers from the script."""
        self.requests.append(request)
        return [self._one(request, i) for i in range(request.n)]

    async def aclose(self) -> None:
        """Nothing to release; remembers that it was closed."""
        self.closed = True

    def describe(self) -> dict[str, object]:
        """Settings for the manifest."""
        return {"kind": "scripted", "name": self.name, "model": self.model,
                "n_batching": self._supports_n}


def build(argument: str, options: TargetOptions) -> ScriptedTarget:
    """Target kind `scripted:<reply>` (registry factory): always answers `<reply>`."""
    if options.rpm is not None or options.tpm is not None:
        raise UsageError("--rpm/--tpm apply to openai:<model> targets, not scripted:<reply>; "
                         "drop them")
    if not argument:
        raise UsageError("target 'scripted:' needs the reply after the colon, e.g. "
                         "scripted:I can't help with that.")
    return ScriptedTarget(argument, name=f"scripted:{argument}")
