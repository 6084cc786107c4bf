"""Targets: what the engine samples, and a registry of target kinds.

`make_target(spec, ...)` builds one from a spec string `<kind>[:<argument>]`: `sim`,
`sim:<profile>` (the embedded simulator; profiles in `harness.sim.PROFILES`), `openai:<model>`
(any OpenAI-compatible endpoint, with the kind options `base_url` and `api_key_env`),
`openai-batch:<model>` (the same through the Batch API: `harness.targets.openai_batch`),
`batch-file:<model>` (a Batch JSONL file answered offline, e.g. by `vllm run-batch`) or
`scripted:<reply>` (a target that always gives one answer, for tests). Callers that already
hold a `Target` pass the object itself (e.g. `run_suite(suite, target=my_target)`).

The registry maps a kind's name to a `TargetKind`: its factory, the options of its own it
takes (`--base-url` and `--api-key-env` are options of the OpenAI kinds, not of a run) and a
hint for a spec that gives options the kind does not take. `make_target` checks the kind
options against that list before the factory runs; the factory checks their values and the
run settings it is given. Adding a kind is one module with a factory
`build(argument, options) -> Target` plus one line in `_BUILTIN_KINDS` (or
`@register_target("name", options=(...))` from a plug-in). Built-in factories are imported on
first use, so `import harness.targets` stays cheap and does not pull in the `openai` client.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from harness.errors import RegistryError, UsageError
from harness.targets.base import Target, TargetOptions

if TYPE_CHECKING:
    from harness.targets.retry import RetryPolicy

TargetFactory = Callable[[str, TargetOptions], Target]
"""`factory(argument, options) -> Target`; `argument` is what follows `kind:` in the spec."""

ENDPOINT_OPTIONS = ("base_url", "api_key_env")
"""The kind options of the kinds that talk to an OpenAI-compatible endpoint: its base URL
and the name of the environment variable that holds its API key (never the key)."""


@dataclass(frozen=True)
class TargetKind:
    """A registry entry: how to build a kind and which options of its own it takes."""

    factory: str | TargetFactory
    """The factory, or "module:function" (imported on first use)."""
    options: tuple[str, ...] = ()
    """The kind options it takes (`base_url`, ...); others are refused before it runs."""
    hint: str = ""
    """What to say to a spec that gives it options it does not take."""


_ENDPOINT_HINT = "use --target openai:<model> for an OpenAI-compatible endpoint"

# Built-in kinds, imported on first use.
_BUILTIN_KINDS: dict[str, TargetKind] = {
    "sim": TargetKind("harness.targets.sim_target:build", hint=_ENDPOINT_HINT),
    "openai": TargetKind("harness.targets.openai_target:build", ENDPOINT_OPTIONS),
    "openai-batch": TargetKind("harness.targets.openai_batch:build", ENDPOINT_OPTIONS),
    "batch-file": TargetKind("harness.targets.batch_file:build",
                             hint="the answers come from a file; use openai-batch:<model> "
                                  "for an endpoint with a Batch API"),
    "scripted": TargetKind("harness.targets.scripted:build", hint=_ENDPOINT_HINT),
}
_REGISTERED: dict[str, TargetKind] = {}

__all__ = [
    "ENDPOINT_OPTIONS",
    "Target",
    "TargetFactory",
    "TargetKind",
    "TargetOptions",
    "make_target",
    "option_flag",
    "parse_spec",
    "register_target",
    "target_kind",
    "target_kinds",
    "target_spec",
]


def register_target(kind: str, *, options: tuple[str, ...] = (), hint: str = ""
                    ) -> Callable[[TargetFactory], TargetFactory]:
    """Decorator: register `factory(argument, options) -> Target` as target kind `kind`,
    taking the kind options `options` (e.g. `ENDPOINT_OPTIONS`)."""
    def decorate(factory: TargetFactory) -> TargetFactory:
        _REGISTERED[kind] = TargetKind(factory, tuple(options), hint)
        return factory

    return decorate


def target_kinds() -> tuple[str, ...]:
    """Every target kind a spec may name."""
    return tuple(sorted(set(_BUILTIN_KINDS) | set(_REGISTERED)))


def target_kind(kind: str) -> TargetKind:
    """The registry entry of a kind (RegistryError, with did-you-mean, when unknown)."""
    entry = _REGISTERED.get(kind) or _BUILTIN_KINDS.get(kind)
    if entry is None:
        raise RegistryError("target kind", kind, target_kinds())
    return entry


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a target spec into (kind, argument): "sim:patched" -> ("sim", "patched")."""
    kind, _, arg = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in target_kinds():
        raise RegistryError("target kind", kind or spec, target_kinds())
    return kind, arg.strip()


def option_flag(name: str) -> str:
    """The command-line flag of a kind option: `base_url` -> `--base-url`."""
    return "--" + name.replace("_", "-")


def _factory(entry: TargetKind) -> TargetFactory:
    if not isinstance(entry.factory, str):
        return entry.factory
    module, _, attr = entry.factory.partition(":")
    factory: TargetFactory = getattr(importlib.import_module(module), attr)
    return factory


def _check_kind_options(kind: str, entry: TargetKind, given: Mapping[str, str]) -> None:
    """Refuse kind options the kind does not take, naming them as the kinds that take them
    group them (`--base-url/--api-key-env`) and which kinds those are."""
    extra = [name for name in given if name not in entry.options]
    if not extra:
        return
    takers = [k for k in target_kinds() if set(extra) <= set(target_kind(k).options)]
    if not takers:
        known = sorted({o for k in target_kinds() for o in target_kind(k).options})
        raise UsageError(f"{'/'.join(option_flag(n) for n in extra)}: no target kind takes "
                         f"{'this option' if len(extra) == 1 else 'these options'} (target "
                         f"options: {', '.join(option_flag(o) for o in known) or 'none'})")
    group = "/".join(option_flag(n) for n in target_kind(takers[0]).options)
    raise UsageError(f"{group} do not apply to {kind} targets (they are options of "
                     f"{', '.join(f'{k}:<model>' for k in takers)} targets): drop them"
                     + (f", or {entry.hint}" if entry.hint else ""))


def make_target(
    spec: str,
    *,
    options: Mapping[str, str | None] | None = None,
    as_of: date | None = None,
    epoch: date | None = None,
    concurrency: int = 16,
    filter_mode: str = "refuse",
    rpm: float | None = None,
    tpm: float | None = None,
    retry_policy: RetryPolicy | None = None,
) -> Target:
    """Build the target a spec names; `options` are the kind's own options (None values are
    left out, so callers can pass unset flags through).

    Raises `RegistryError` (with did-you-mean) for an unknown kind or sim profile and
    `UsageError` when options do not fit the kind (e.g. --base-url or --rpm with `sim`).
    """
    kind, arg = parse_spec(spec)
    entry = target_kind(kind)
    kind_options = {k: v for k, v in (options or {}).items() if v is not None}
    _check_kind_options(kind, entry, kind_options)
    built = TargetOptions(as_of=as_of, epoch=epoch, concurrency=concurrency,
                          filter_mode=filter_mode, rpm=rpm, tpm=tpm, retry_policy=retry_policy,
                          kind_options=kind_options)
    return _factory(entry)(arg, built)


def target_spec(target: str | Target) -> str:
    """The spec recorded for a target: the spec string itself, or a target object's name."""
    return target if isinstance(target, str) else target.name
