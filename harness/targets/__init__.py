"""Targets: what the engine samples, and a registry of target kinds.

`make_target(spec, ...)` builds one from a spec string `<kind>[:<argument>]`: `sim`,
`sim:<profile>` (the embedded simulator; profiles in `harness.sim.PROFILES`), `openai:<model>`
(any OpenAI-compatible endpoint, with `base_url` and `api_key_env`), `openai-batch:<model>`
(the same through the Batch API: `harness.targets.openai_batch`), `batch-file:<model>` (a
Batch JSONL file answered offline, e.g. by `vllm run-batch`) or `scripted:<reply>` (a
target that always gives one answer, for tests). Callers that already hold a `Target` pass
the object itself (e.g. `run_suite(suite, target=my_target)`).

Adding a kind is one module with a factory `build(argument, options) -> Target` that checks
its own options, plus one line in `_BUILTIN_KINDS` (or `@register_target("name")` from a
plug-in). Built-in factories are imported on first use, so `import harness.targets` stays
cheap and does not pull in the `openai` client.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from harness.errors import RegistryError
from harness.targets.base import Target, TargetOptions

if TYPE_CHECKING:
    from harness.targets.retry import RetryPolicy

TargetFactory = Callable[[str, TargetOptions], Target]
"""`factory(argument, options) -> Target`; `argument` is what follows `kind:` in the spec."""

# Built-in kinds, imported on first use ("module:factory").
_BUILTIN_KINDS: dict[str, str] = {
    "sim": "harness.targets.sim_target:build",
    "openai": "harness.targets.openai_target:build",
    "openai-batch": "harness.targets.openai_batch:build",
    "batch-file": "harness.targets.batch_file:build",
    "scripted": "harness.targets.scripted:build",
}
_REGISTERED: dict[str, TargetFactory] = {}

__all__ = [
    "Target",
    "TargetFactory",
    "TargetOptions",
    "make_target",
    "parse_spec",
    "register_target",
    "target_kinds",
    "target_spec",
]


def register_target(kind: str) -> Callable[[TargetFactory], TargetFactory]:
    """Decorator: register `factory(argument, options) -> Target` as target kind `kind`."""
    def decorate(factory: TargetFactory) -> TargetFactory:
        _REGISTERED[kind] = factory
        return factory

    return decorate


def target_kinds() -> tuple[str, ...]:
    """Every target kind a spec may name."""
    return tuple(sorted(set(_BUILTIN_KINDS) | set(_REGISTERED)))


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a target spec into (kind, argument): "sim:patched" -> ("sim", "patched")."""
    kind, _, arg = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in target_kinds():
        raise RegistryError("target kind", kind or spec, target_kinds())
    return kind, arg.strip()


def _factory(kind: str) -> TargetFactory:
    if kind in _REGISTERED:
        return _REGISTERED[kind]
    module, _, attr = _BUILTIN_KINDS[kind].partition(":")
    factory: TargetFactory = getattr(importlib.import_module(module), attr)
    return factory


def make_target(
    spec: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    as_of: date | None = None,
    epoch: date | None = None,
    concurrency: int = 16,
    filter_mode: str = "refuse",
    rpm: float | None = None,
    tpm: float | None = None,
    retry_policy: RetryPolicy | None = None,
) -> Target:
    """Build the target a spec names.

    Raises `RegistryError` (with did-you-mean) for an unknown kind or sim profile and
    `UsageError` when options do not fit the kind (e.g. --base-url or --rpm with `sim`).
    """
    kind, arg = parse_spec(spec)
    options = TargetOptions(base_url=base_url, api_key_env=api_key_env, as_of=as_of,
                            epoch=epoch, concurrency=concurrency, filter_mode=filter_mode,
                            rpm=rpm, tpm=tpm, retry_policy=retry_policy)
    return _factory(kind)(arg, options)


def target_spec(target: str | Target) -> str:
    """The spec recorded for a target: the spec string itself, or a target object's name."""
    return target if isinstance(target, str) else target.name
