"""A run's manifest: the one built before sampling, and what a resume or a rescore reads back
from it (the stored suite with its recorded plan settings, the shard, the endpoint)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import StoreError, UsageError
from harness.plan import Shard, plan_cells, shard_cells
from harness.privacy import SECRET, scrub_url
from harness.run._options import RunOptions
from harness.store import SCHEMA_VERSION
from harness.suites import Price, Suite, load_suite
from harness.targets import target_spec
from harness.targets.base import Target

__all__ = ["build_manifest", "resume_base_url", "resume_target_options", "shard_from_manifest",
           "stored_suite", "stored_target_options"]


def build_manifest(suite: Suite, options: RunOptions, target: Target, run_id: str,
                   started: str) -> dict[str, Any]:
    """The manifest written when a run folder is made (status `running`; the finish step
    completes it)."""
    n_cells = (len(shard_cells(plan_cells(suite), options.shard)) if options.shard
               else len(suite.probes) * len(suite.contexts) * len(suite.temperatures))
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "harness_version": __version__,
        "suite": {
            "name": suite.name,
            "path": str(suite.path.resolve()) if suite.path else None,
            "sha256": suite.sha256,
            "deployment": suite.deployment,
            "incident": dict(suite.incident) if suite.incident else None,
        },
        "target": {"spec": target_spec(options.target), **target.describe()},
        "settings": {
            "samples": suite.samples,
            "temperatures": list(suite.temperatures),
            "seed": suite.seed,
            "concurrency": suite.concurrency,
            "confidence_level": suite.confidence_level,
            "max_error_rate": suite.max_error_rate,
            "max_tokens": suite.max_tokens,
            "max_response_chars": suite.max_response_chars,
            "max_rate": dict(suite.max_rate),
            "gate": {"method": suite.gate.method, "cluster": suite.gate.cluster,
                     "multiplicity": suite.gate.multiplicity},
            "storage": suite.storage,
            "forensic_capture": suite.forensic_capture,
            "contexts": [c.name for c in suite.contexts],
            "n_probes": len(suite.probes),
            "as_of": options.as_of.isoformat() if options.as_of else None,
            "epoch": options.epoch.isoformat() if options.epoch else None,
            "sequential": options.sequential,
            "max_samples": options.max_samples,
            # The target kind's options (credentials in a URL scrubbed), and the two that
            # manifests have always had under these names, for the tools that read them.
            "target_options": {k: _scrub(v) for k, v in options.target_options.items()},
            "base_url": _scrub(options.target_options.get("base_url")),
            "api_key_env": options.target_options.get("api_key_env"),
            "price": suite.price.to_dict() if suite.price else None,
        },
        "planned_samples": n_cells * suite.samples,
        "started": started,
        "finished": None,
        "status": "running",
    }
    if options.shard is not None:
        manifest["shard"] = {"index": options.shard.index, "count": options.shard.count,
                             "cells": n_cells, "method": "sha256(cell key) mod count"}
    return manifest


def shard_from_manifest(manifest: dict[str, Any]) -> Shard | None:
    """The `--shard` a run was made with (None for a whole-plan run)."""
    shard = manifest.get("shard")
    return Shard(int(shard["index"]), int(shard["count"])) if shard else None


def _scrub(text: str | None) -> str | None:
    """A URL setting with its credentials (user:pass@, ?key=...) removed."""
    return scrub_url(text)


def stored_target_options(settings: Mapping[str, Any]) -> dict[str, str]:
    """The target kind options a run was sampled with: `settings.target_options`, or in a
    manifest written before kind options had a place of their own, `settings.base_url` and
    `settings.api_key_env` (unset ones left out)."""
    stored = settings.get("target_options")
    if not isinstance(stored, Mapping):
        stored = {k: settings.get(k) for k in ("base_url", "api_key_env")}
    return {str(k): str(v) for k, v in stored.items() if v is not None}


def resume_target_options(settings: Mapping[str, Any], given: Mapping[str, str],
                          run_dir: Path) -> dict[str, str]:
    """The kind options a resume uses: the stored ones, with the options given again on top
    (the key's variable may change), except that a base URL given again must be the one
    the run was sampled from (`resume_base_url`)."""
    stored = stored_target_options(settings)
    out = {**stored, **{k: v for k, v in given.items() if k != "base_url"}}
    url = resume_base_url(stored.get("base_url"), given.get("base_url"), run_dir)
    out.pop("base_url", None)
    if url is not None:
        out["base_url"] = url
    return out


def resume_base_url(stored: str | None, given: str | None, run_dir: Path) -> str | None:
    """The base URL a resume uses: the stored one, or, when its credentials were not stored
    (`?key=[secret]`), the `--base-url` given again, which must be the same URL."""
    if given is None:
        if stored is not None and SECRET in stored:
            raise UsageError(f"{run_dir} was sampled from {stored}, whose credentials were not "
                             "stored; pass the same --base-url again to resume")
        return stored
    if scrub_url(given) != stored:
        raise UsageError(f"--base-url {scrub_url(given)!r} is not the endpoint {run_dir} was "
                         f"sampled from ({stored!r}); resume against the same endpoint or start "
                         "a new run")
    return given


def stored_suite(run_dir: Path, manifest: dict[str, Any], action: str) -> Suite:
    """The suite a run was sampled with: its file (unchanged since, by sha256) with the
    plan settings recorded in its manifest. `action` names what needs it, for the message."""
    suite_path = manifest.get("suite", {}).get("path")
    if not suite_path or not Path(suite_path).exists():
        raise StoreError(f"{run_dir}: its suite file {suite_path!r} is gone; restore it to "
                         f"{action}")
    suite = load_suite(suite_path)
    if suite.sha256 != manifest["suite"]["sha256"]:
        raise StoreError(f"{suite_path} changed since run {manifest.get('run_id')} started "
                         f"(sha256 differs); to {action} would mix two suites. Start a new run "
                         "instead.")
    s = manifest["settings"]
    price = s.get("price")
    return replace(suite, samples=s["samples"], temperatures=tuple(s["temperatures"]),
                   seed=s["seed"], concurrency=s.get("concurrency"),
                   confidence_level=s["confidence_level"],
                   price=Price(price["per_1k_in"], price["per_1k_out"], price["currency"])
                   if price else suite.price,
                   max_response_chars=s.get("max_response_chars", suite.max_response_chars))
