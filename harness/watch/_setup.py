"""Create a watch: check its settings, pin its suite, ask an endpoint the canaries once."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

from harness.errors import UsageError
from harness.privacy import scrub_url, url_secrets
from harness.stats.checks import check_confidence
from harness.watch._nights import utc_now
from harness.watch.canary import ask_canaries
from harness.watch.model import WatchDefinition
from harness.watch.store import WatchFiles, check_name, create_watch, watch_files


def init_watch(
    name: str,
    *,
    suite: str | Path,
    target: str,
    max_rate: float,
    days: int,
    min_runs: int = 3,
    confidence_level: float = 0.95,
    start: date | None = None,
    samples: int | None = None,
    drift_alpha: float | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    min_coverage: float = 0.9,
    grace_days: int = 1,
    canaries: bool = True,
    signal_baseline_days: int = 14,
    results: str | Path = "results",
    warn: Callable[[str], None] | None = None,
) -> WatchFiles:
    """Validate the settings and write `results/watches/NAME/watch.json` and an empty ledger.

    The suite path is stored absolute (and relative to the watch folder), and the suite's
    samples, temperatures and hash are pinned: later runs ignore HARNESS_* overrides and
    refuse a changed suite. With canaries on, an OpenAI-compatible endpoint is asked the
    canary prompts once; ``warn`` hears when it gives no system_fingerprint (or cannot be
    reached yet).
    """
    from harness.suites import load_suite

    check_name(name)
    _check_settings(max_rate=max_rate, days=days, min_runs=min_runs,
                    confidence_level=confidence_level, samples=samples,
                    drift_alpha=drift_alpha, min_coverage=min_coverage,
                    signal_baseline_days=signal_baseline_days, grace_days=grace_days,
                    base_url=base_url)
    loaded = load_suite(suite)  # fail now, not on the first night, if the suite is broken
    _check_target(target)
    files = watch_files(name, results)
    suite_abs = Path(suite).resolve()
    definition = WatchDefinition(
        name=name, suite=str(suite_abs), target=target, max_rate=float(max_rate),
        days=int(days), min_runs=int(min_runs), confidence_level=float(confidence_level),
        start=start, drift_alpha=drift_alpha, samples=samples or loaded.samples,
        base_url=base_url, api_key_env=api_key_env, created=utc_now(),
        suite_relative=os.path.relpath(suite_abs, files.dir.resolve()),
        suite_sha256=loaded.sha256, temperatures=tuple(loaded.temperatures),
        min_coverage=float(min_coverage), grace_days=int(grace_days), canaries=canaries,
        signal_baseline_days=int(signal_baseline_days))
    if canaries and target.startswith("openai"):
        _check_fingerprint(definition, warn or (lambda _m: None))
    return create_watch(definition, results)


def _check_settings(*, max_rate: float, days: int, min_runs: int, confidence_level: float,
                    samples: int | None, drift_alpha: float | None, min_coverage: float,
                    signal_baseline_days: int, grace_days: int, base_url: str | None) -> None:
    """Refuse a watch setting out of range (UsageError naming the flag)."""
    if not 0.0 < max_rate < 1.0:
        hint = f" (did you mean {max_rate / 100:g}?)" if 1.0 <= max_rate <= 100.0 else ""
        raise UsageError(f"--max-rate must be a rate strictly between 0 and 1, got "
                         f"{max_rate:g}{hint}")
    if days < 1:
        raise UsageError(f"--days must be at least 1, got {days}")
    if min_runs < 1:
        raise UsageError(f"--min-runs must be at least 1, got {min_runs}")
    if min_runs > days:
        raise UsageError(f"--min-runs {min_runs} is more than --days {days}; the watch could "
                         "never hold. Lower --min-runs or lengthen --days")
    try:
        check_confidence(confidence_level)
    except ValueError as exc:
        raise UsageError(f"--confidence: {exc}") from None
    if samples is not None and samples < 1:
        raise UsageError(f"--samples must be at least 1, got {samples}")
    if drift_alpha is not None and not 0.0 < drift_alpha < 1.0:
        raise UsageError(f"--drift-alpha must be in (0, 1), got {drift_alpha:g}")
    if not 0.0 < min_coverage <= 1.0:
        raise UsageError(f"--min-coverage must be a share of nights in (0, 1], got "
                         f"{min_coverage:g} (e.g. 0.9 for 90%)")
    if signal_baseline_days < 2:
        raise UsageError(f"--signal-baseline-days must be at least 2, got "
                         f"{signal_baseline_days}")
    if grace_days < 0:
        raise UsageError(f"--grace-days must be 0 or more, got {grace_days}")
    if url_secrets(base_url):
        # watch.json is documented as safe to commit: it must never hold a credential.
        raise UsageError(
            f"--base-url {scrub_url(base_url)!r} carries a credential (user:pass@ or a key in "
            "its query); watch.json is meant to be committed and cannot hold it. Use the "
            "endpoint's Bearer-key form and name the key's variable with --api-key-env.")


def _check_fingerprint(definition: WatchDefinition, warn: Callable[[str], None]) -> None:
    """Ask the endpoint the canaries once; warn when it reports no system_fingerprint."""
    from harness.errors import HarnessError
    from harness.targets import make_target

    try:
        result = ask_canaries(make_target(definition.target,
                                          options=definition.target_options, concurrency=1))
    except HarnessError as exc:
        warn(f"could not ask {definition.target} the canary prompts ({exc}); whether it gives "
             "a system_fingerprint is unknown until the first night")
        return
    if not result.fingerprints:
        warn(f"the endpoint of {definition.target} gives no system_fingerprint (model name "
             f"{', '.join(result.models) or 'not reported'}): a model swapped behind the same "
             f"name is caught only by the behavioural fingerprint ({result.n_prompts} canary "
             "prompts at temperature 0, fixed seed, hashed each night)")


def _check_target(spec: str) -> None:
    """Refuse an unknown target kind or sim profile at init (with did-you-mean)."""
    from harness.errors import RegistryError
    from harness.targets import parse_spec

    kind, arg = parse_spec(spec)
    if kind == "sim" and arg:
        from harness.sim.model import PROFILES

        if arg not in PROFILES:
            raise RegistryError("sim profile", arg, PROFILES)
