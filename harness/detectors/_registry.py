"""Detector registry: names -> factories, plug-ins, and the run-owned `DetectorPool`.

Lookup order for a name: detectors registered in-process with `@register`, the
built-in detectors (imported lazily so `import harness.detectors` stays cheap and
does not pull in the `openai` client), the `harness.detectors` entry-point group,
and finally `module:function` names, imported on demand.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from harness.detectors.base import (
    Detector,
    DetectorContext,
    DetectorFactory,
    DetectorParamError,
    DetectorPluginError,
)
from harness.errors import RegistryError, UsageError
from harness.records import DetectorSpec, stable_json

ENTRY_POINT_GROUP = "harness.detectors"

# Built-in detectors, imported on first use ("module:factory").
_BUILTINS: dict[str, str] = {
    "refusal": "harness.detectors.rules.refusal:make_refusal",
    "pattern": "harness.detectors.rules.pattern:make_pattern",
    "canary": "harness.detectors.rules.canary:make_canary",
    "injection": "harness.detectors.rules.injection:make_injection",
    "moderation": "harness.detectors.moderation:make_moderation",
    "judge": "harness.detectors.judge:make_judge",
}

_REGISTERED: dict[str, DetectorFactory] = {}


def register(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Decorator: register `factory(params) -> Detector` under `name`.

    Registering a name again replaces the earlier factory (useful in tests and for
    plug-ins that deliberately override a built-in).
    """
    if not name or ":" in name:
        raise UsageError(f"detector name {name!r} must be non-empty and contain no ':'")

    def decorate(factory: DetectorFactory) -> DetectorFactory:
        _REGISTERED[name] = factory
        return factory

    return decorate


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known_names() -> list[str]:
    """Every detector name that can be looked up (without `module:function` forms)."""
    return sorted(set(_REGISTERED) | set(_BUILTINS) | set(_entry_points()))


def _import_attr(ref: str, display: str) -> Any:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise DetectorPluginError(display, "expected the form 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DetectorPluginError(
            display, f"module {module_name!r} not importable ({exc}); check the name and "
            "that the package is installed in this environment"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise DetectorPluginError(display, f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise DetectorPluginError(display, f"{ref!r} is not callable")
    return obj


def resolve_factory(name: str) -> DetectorFactory:
    """The factory for a detector name; raises RegistryError (with did-you-mean) if unknown."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTINS:
        factory: DetectorFactory = _import_attr(_BUILTINS[name], name)
        return factory
    eps = _entry_points()
    if name in eps:
        try:
            loaded = eps[name].load()
        except Exception as exc:  # a broken third-party package must not crash with a traceback
            raise DetectorPluginError(
                name, f"entry point {eps[name].value!r} failed: {exc}"
            ) from exc
        if not callable(loaded):
            raise DetectorPluginError(name, f"entry point {eps[name].value!r} is not callable")
        factory_ep: DetectorFactory = loaded
        return factory_ep
    if ":" in name:
        plugin: DetectorFactory = _import_attr(name, name)
        return plugin
    raise RegistryError("detector", name, known_names())


def _takes_context(factory: DetectorFactory) -> bool:
    """Whether a factory takes the keyword `context` (the detectors that ask a model)."""
    try:
        return "context" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a callable without a signature (a C function)
        return False


def _call_factory(factory: DetectorFactory, params: Mapping[str, Any],
                  context: DetectorContext | None) -> Any:
    if context is not None and _takes_context(factory):
        return factory(params, context=context)  # type: ignore[call-arg]
    return factory(params)


def build(spec: DetectorSpec, context: DetectorContext | None = None) -> Detector:
    """A new configured detector for `spec`; its caller closes it (`aclose`, when it has
    one). Work over many outputs takes its detectors from a `DetectorPool` instead, which
    shares one instance (one judge cache, one client) between equal specs and closes them.
    `context` (retry policy, concurrency) goes to factories that take it."""
    detector = _call_factory(resolve_factory(spec.name), spec.params, context)
    if not isinstance(detector, Detector):
        raise DetectorPluginError(
            spec.name, "factory did not return a Detector (needs `name` and async `detect`)"
        )
    return detector


class DetectorPool:
    """The detectors of one run (or rescore): built once per distinct spec, closed together.

    Owned by whoever runs the work (`harness.run`, `harness.rescore`), so no detector, judge
    cache or client outlives it and nothing is shared between runs through module state.
    `context` is what the owner lends the detectors that ask a model: its retry policy and
    concurrency (`DetectorContext`); they reach their model as a target with it.
    """

    def __init__(self, context: DetectorContext | None = None) -> None:
        self.context = context
        self._instances: dict[tuple[str, str], Detector] = {}

    def build(self, spec: DetectorSpec) -> Detector:
        """The pool's detector for `spec` (equal specs share one instance, e.g. one judge
        cache for every probe that asks for the same judge)."""
        key = (spec.name, stable_json(dict(spec.params)))
        detector = self._instances.get(key)
        if detector is None:
            detector = self._instances[key] = build(spec, self.context)
        return detector

    def __len__(self) -> int:
        return len(self._instances)

    async def aclose(self) -> None:
        """Close every detector built here (with the targets, clients and caches they own)."""
        instances = list(self._instances.values())
        self._instances.clear()
        for det in instances:
            close = getattr(det, "aclose", None)
            if close is not None:
                await close()


def check_spec(spec: DetectorSpec) -> str | None:
    """Validate a spec without network access: None if it builds, else the problem text."""
    try:
        factory = resolve_factory(spec.name)
        factory(spec.params)
    except DetectorParamError as exc:
        return f"{exc.param}: {exc.problem}"
    except (RegistryError, UsageError) as exc:
        return str(exc)
    return None



