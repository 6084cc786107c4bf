"""Run settings: built-in defaults < suite file < environment (HARNESS_*) < flags.

The suite file's values live on `Suite`; this module reads the environment layer and applies
the override layers in order. Bad values name the variable or flag that carried them.

It is the one place the environment is read for settings: `env_overrides()` (the run-setting
layer), `environment()` (every other `HARNESS_*` variable, and the CI variables the CLI
honours) and `ignored_environment()` (what a pinned watch leaves out). Two reads stay where
they are because they are about secrets, not settings: the API key from the variable a
target's `api_key_env` names (read by the target, kept only in its client) and
`privacy.secret_env_values` (credential-named variables, scrubbed from output).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from harness.errors import UsageError
from harness.suites import Price, Suite


@dataclass(frozen=True)
class Overrides:
    """Per-run overrides from flags (None = not given)."""

    samples: int | None = None
    temperatures: tuple[float, ...] | None = None
    seed: int | None = None
    concurrency: int | None = None
    confidence_level: float | None = None
    price_per_1k_in: float | None = None
    price_per_1k_out: float | None = None
    max_response_chars: int | None = None


_ENV = {
    "samples": "HARNESS_SAMPLES",
    "temperatures": "HARNESS_TEMPERATURES",
    "seed": "HARNESS_SEED",
    "concurrency": "HARNESS_CONCURRENCY",
    "confidence_level": "HARNESS_CONFIDENCE",
    "price_per_1k_in": "HARNESS_PRICE_PER_1K_IN",
    "price_per_1k_out": "HARNESS_PRICE_PER_1K_OUT",
    "max_response_chars": "HARNESS_MAX_RESPONSE_CHARS",
}


@dataclass(frozen=True)
class Environment:
    """The `HARNESS_*` variables other than run settings, and the CI ones (None = unset or
    empty). Read afresh by `environment()`, so a test's monkeypatched variable counts."""

    target: str | None = None
    """HARNESS_TARGET: the target spec when --target is not given."""
    base_url: str | None = None
    """HARNESS_BASE_URL: the endpoint when --base-url is not given."""
    paraphrase_target: str | None = None
    """HARNESS_PARAPHRASE_TARGET: `incident new`'s paraphrase target."""
    responder: str | None = None
    """HARNESS_RESPONDER (else USER): who hands an incident stage over."""
    judge_model: str | None = None
    judge_base_url: str | None = None
    moderation_model: str | None = None
    moderation_base_url: str | None = None
    cache_dir: str | None = None
    """HARNESS_CACHE_DIR: the judge cache lives in its `judge/` folder."""
    log_dir: str | None = None
    """HARNESS_LOG_DIR (else XDG_STATE_HOME/harness): where a crash log goes."""
    state_home: str | None = None
    debug: bool = False
    """HARNESS_DEBUG: print the traceback of a handled error too."""
    ci: bool = False
    """CI: no progress bar (a log, not a terminal)."""
    step_summary: str | None = None
    """GITHUB_STEP_SUMMARY: the file GitHub shows as the job summary."""

    @property
    def target_options(self) -> dict[str, str]:
        """Target kind options from the environment (HARNESS_BASE_URL -> `base_url`), under
        the flags: the registry checks them against the kind like `--base-url`."""
        return _given(base_url=self.base_url)

    @property
    def judge_options(self) -> dict[str, str]:
        """Defaults of the judge's model target: HARNESS_JUDGE_MODEL -> `model`,
        HARNESS_JUDGE_BASE_URL -> `base_url` (under the detector's own params)."""
        return _given(model=self.judge_model, base_url=self.judge_base_url)

    @property
    def moderation_options(self) -> dict[str, str]:
        """Defaults of the moderation classifier's target: HARNESS_MODERATION_MODEL,
        HARNESS_MODERATION_BASE_URL."""
        return _given(model=self.moderation_model, base_url=self.moderation_base_url)


def _given(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


_ENVIRONMENT = {
    "target": "HARNESS_TARGET",
    "base_url": "HARNESS_BASE_URL",
    "paraphrase_target": "HARNESS_PARAPHRASE_TARGET",
    "judge_model": "HARNESS_JUDGE_MODEL",
    "judge_base_url": "HARNESS_JUDGE_BASE_URL",
    "moderation_model": "HARNESS_MODERATION_MODEL",
    "moderation_base_url": "HARNESS_MODERATION_BASE_URL",
    "cache_dir": "HARNESS_CACHE_DIR",
    "log_dir": "HARNESS_LOG_DIR",
    "state_home": "XDG_STATE_HOME",
    "step_summary": "GITHUB_STEP_SUMMARY",
}


def environment(environ: Mapping[str, str] | None = None) -> Environment:
    """The environment's non-run settings, read now (see `Environment`)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {f: env.get(v) or None for f, v in _ENVIRONMENT.items()}
    return Environment(**values, responder=env.get("HARNESS_RESPONDER") or env.get("USER"),
                       debug=bool(env.get("HARNESS_DEBUG")), ci=bool(env.get("CI")))


def ignored_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """HARNESS_* run-setting variables that are set (a watch ignores them: pinned settings)."""
    env = os.environ if environ is None else environ
    return {v: env[v] for v in sorted(_ENV.values()) if env.get(v)}


def parse_temperatures(text: str, setting: str = "--temperatures") -> tuple[float, ...]:
    """Parse '0,0.7,1' into temperatures, or raise UsageError naming the setting."""
    try:
        temps = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise UsageError(f"{setting}: {text!r} is not a comma-separated list of numbers, "
                         "e.g. 0,0.7,1") from None
    if not temps or any(not 0 <= t <= 2 for t in temps):
        raise UsageError(f"{setting}: {text!r}: temperatures must be numbers in [0, 2]")
    twice = sorted({t for t in temps if temps.count(t) > 1})
    if twice:
        raise UsageError(f"{setting}: {text!r} lists {', '.join(f'{t:g}' for t in twice)} more "
                         "than once; list each temperature once")
    return temps


def env_overrides(environ: Mapping[str, str] | None = None) -> Overrides:
    """Overrides read from HARNESS_* environment variables (bad values name the variable)."""
    env = os.environ if environ is None else environ

    def get(key: str, conv: Any) -> Any:
        name = _ENV[key]
        if name not in env or env[name] == "":
            return None
        try:
            return conv(env[name])
        except (ValueError, UsageError):
            raise UsageError(f"environment {name}={env[name]!r} is not valid; unset it or fix "
                             "the value") from None

    return Overrides(
        samples=get("samples", int), temperatures=get(
            "temperatures", lambda s: parse_temperatures(s, "HARNESS_TEMPERATURES")),
        seed=get("seed", int), concurrency=get("concurrency", int),
        confidence_level=get("confidence_level", float),
        price_per_1k_in=get("price_per_1k_in", float),
        price_per_1k_out=get("price_per_1k_out", float),
        max_response_chars=get("max_response_chars", int),
    )


def apply_overrides(suite: Suite, *layers: Overrides) -> Suite:
    """Suite values overridden by each layer in turn (later layers win)."""
    for layer in layers:
        changes: dict[str, Any] = {}
        if layer.samples is not None:
            if layer.samples < 1:
                raise UsageError(f"samples must be at least 1, got {layer.samples}")
            changes["samples"] = layer.samples
        if layer.temperatures is not None:
            changes["temperatures"] = layer.temperatures
        if layer.seed is not None:
            changes["seed"] = layer.seed
        if layer.concurrency is not None:
            if layer.concurrency < 1:
                raise UsageError(f"concurrency must be at least 1, got {layer.concurrency}")
            changes["concurrency"] = layer.concurrency
        if layer.confidence_level is not None:
            if not 0 < layer.confidence_level < 1:
                raise UsageError(f"confidence level must be in (0, 1), got "
                                 f"{layer.confidence_level}")
            changes["confidence_level"] = layer.confidence_level
        price = _price(suite.price, layer.price_per_1k_in, layer.price_per_1k_out)
        if price is not None:
            changes["price"] = price
        if layer.max_response_chars is not None:
            if layer.max_response_chars < 1:
                raise UsageError("max_response_chars must be at least 1, got "
                                 f"{layer.max_response_chars}")
            changes["max_response_chars"] = layer.max_response_chars
        suite = replace(suite, **changes)
    return suite


def _price(current: Price | None, per_1k_in: float | None,
           per_1k_out: float | None) -> Price | None:
    """The price after a layer's --price-per-1k-in/--price-per-1k-out (None: unchanged)."""
    if per_1k_in is None and per_1k_out is None:
        return None
    for name, value in (("--price-per-1k-in", per_1k_in), ("--price-per-1k-out", per_1k_out)):
        if value is not None and not value >= 0:
            raise UsageError(f"{name} {value!r} must be a number >= 0 (price of 1,000 tokens)")
    if current is None and (per_1k_in is None or per_1k_out is None):
        missing = "--price-per-1k-out" if per_1k_out is None else "--price-per-1k-in"
        raise UsageError(f"a cost estimate needs both prices: add {missing} (0 when that side "
                         "is free), or set price: {per_1k_in: ..., per_1k_out: ...} in the "
                         "suite")
    base = current or Price(0.0, 0.0)
    return Price(base.per_1k_in if per_1k_in is None else per_1k_in,
                 base.per_1k_out if per_1k_out is None else per_1k_out, base.currency)
