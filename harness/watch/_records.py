"""The records of a watch on disk: its definition and ledger lines (no I/O, no logic).

`WatchDefinition` is `watch.json`, `LedgerEntry` one line of `ledger.jsonl`; what
`evaluate_watch` returns (`Alarm`, `RunPoint`, `WatchStatus`) is in `harness.watch._outcomes`.
Each has a JSON form (`to_dict`); the public import path is `harness.watch.model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

SCHEMA_VERSION = 1
DRIFT_FAMILIES = ("homogeneity", "cusum", "score-shift", "refusal-shift", "length-shift")


@dataclass(frozen=True)
class WatchDefinition:
    """What a watch runs and how it judges: `results/watches/NAME/watch.json`."""

    name: str
    suite: str
    target: str
    max_rate: float
    days: int
    min_runs: int = 3
    confidence_level: float = 0.95
    start: date | None = None
    """First day of the period; None: the date of the first run."""
    drift_alpha: float | None = None
    """False-alarm budget of the drift signals; None: 1 - confidence_level."""
    samples: int | None = None
    """Per-cell samples override for each nightly run (None: the suite's)."""
    base_url: str | None = None
    api_key_env: str | None = None
    created: str = ""
    suite_relative: str | None = None
    """The suite path relative to the watch folder (tried when ``suite``, stored absolute,
    is gone: a watch folder moved or checked out elsewhere with its suite)."""
    suite_sha256: str | None = None
    """The suite file's hash at init: a later run refuses a changed suite."""
    temperatures: tuple[float, ...] | None = None
    """Temperatures pinned at init (None: an old watch; the suite's)."""
    min_coverage: float = 0.9
    """Share of the period's nights that must have a run for `verified`."""
    grace_days: int = 1
    """`watch status` calls the cron stalled (exit 4) when the last run is more than this
    many nights behind the night due."""
    canaries: bool = True
    """Send the fixed canary prompts each night (the behavioural fingerprint)."""
    signal_baseline_days: int = 14
    """Production signals: the first this many ingested days are the baseline."""
    schema_version: int = SCHEMA_VERSION

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence_level

    @property
    def target_options(self) -> dict[str, str]:
        """The target kind's options each night's run is given (`base_url`, `api_key_env`;
        kept in watch.json under those names)."""
        given = {"base_url": self.base_url, "api_key_env": self.api_key_env}
        return {k: v for k, v in given.items() if v is not None}

    @property
    def drift_budget(self) -> float:
        return self.drift_alpha if self.drift_alpha is not None else self.alpha

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to watch.json."""
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "suite": self.suite,
            "target": self.target,
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "max_rate": self.max_rate,
            "days": self.days,
            "min_runs": self.min_runs,
            "confidence_level": self.confidence_level,
            "drift_alpha": self.drift_alpha,
            "start": self.start.isoformat() if self.start else None,
            "samples": self.samples,
            "temperatures": list(self.temperatures) if self.temperatures is not None else None,
            "suite_relative": self.suite_relative,
            "suite_sha256": self.suite_sha256,
            "min_coverage": self.min_coverage,
            "grace_days": self.grace_days,
            "canaries": self.canaries,
            "signal_baseline_days": self.signal_baseline_days,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WatchDefinition:
        """Parse watch.json (raises KeyError/ValueError/TypeError on a broken file)."""
        return cls(
            name=str(d["name"]),
            suite=str(d["suite"]),
            target=str(d["target"]),
            max_rate=float(d["max_rate"]),
            days=int(d["days"]),
            min_runs=int(d.get("min_runs", 3)),
            confidence_level=float(d.get("confidence_level", 0.95)),
            start=date.fromisoformat(d["start"]) if d.get("start") else None,
            drift_alpha=float(d["drift_alpha"]) if d.get("drift_alpha") is not None else None,
            samples=int(d["samples"]) if d.get("samples") is not None else None,
            base_url=d.get("base_url"),
            api_key_env=d.get("api_key_env"),
            created=str(d.get("created", "")),
            suite_relative=d.get("suite_relative"),
            suite_sha256=d.get("suite_sha256"),
            temperatures=(tuple(float(t) for t in d["temperatures"])
                          if d.get("temperatures") is not None else None),
            min_coverage=float(d.get("min_coverage", 0.9)),
            grace_days=int(d.get("grace_days", 1)),
            canaries=bool(d.get("canaries", True)),
            signal_baseline_days=int(d.get("signal_baseline_days", 14)),
            schema_version=int(d.get("schema_version", SCHEMA_VERSION)),
        )

    @property
    def end(self) -> date | None:
        """Last night of the period (None until the start is known)."""
        return self.start + timedelta(days=self.days - 1) if self.start else None


@dataclass(frozen=True)
class LedgerEntry:
    """One nightly run appended to a watch: a line of `ledger.jsonl`.

    Counts exclude over-refusal controls from ``n``/``n_harmful`` (as the run's `overall`
    does) and errors (never counted as safe). ``tests`` holds the per-run comparisons against
    the segment's reference run: ``{"score:<detector>" | "length" | "refusal": {statistic,
    p_value, method}}`` (empty for a segment's first run).
    """

    seq: int
    run_id: str
    run_dir: str
    as_of: date
    recorded: str
    outcome: str
    n: int
    n_harmful: int
    n_blocked: int = 0
    n_error: int = 0
    n_refused: int = 0
    n_all: int = 0
    n_planned: int = 0
    models: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()
    response_chars_median: float | None = None
    reference_run_id: str | None = None
    tests: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    backfill: bool = False
    """Run after a later night had already run (a missing night filled in)."""
    resumed: bool = False
    """Finished by `watch run --resume` after an interruption."""
    env_ignored: Mapping[str, str] = field(default_factory=dict)
    """HARNESS_* variables set when the night ran, ignored (the watch's settings are pinned)."""
    behaviour: str | None = None
    """Hash of the canary answers (temperature 0, fixed seed): the behavioural fingerprint."""
    schema_version: int = SCHEMA_VERSION

    @property
    def identity(self) -> tuple[tuple[str, ...], ...]:
        """Model names, system fingerprints and the behavioural fingerprint (each may be
        empty: not reported)."""
        return (self.models, self.fingerprints, (self.behaviour,) if self.behaviour else ())

    def to_dict(self) -> dict[str, Any]:
        """The JSON line form."""
        return {
            "schema_version": self.schema_version,
            "seq": self.seq,
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "as_of": self.as_of.isoformat(),
            "recorded": self.recorded,
            "outcome": self.outcome,
            "n": self.n,
            "n_harmful": self.n_harmful,
            "n_blocked": self.n_blocked,
            "n_error": self.n_error,
            "n_refused": self.n_refused,
            "n_all": self.n_all,
            "n_planned": self.n_planned,
            "models": list(self.models),
            "fingerprints": list(self.fingerprints),
            "response_chars_median": self.response_chars_median,
            "reference_run_id": self.reference_run_id,
            "tests": {k: dict(v) for k, v in self.tests.items()},
            "backfill": self.backfill,
            "resumed": self.resumed,
            "env_ignored": dict(self.env_ignored),
            "behaviour": self.behaviour,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LedgerEntry:
        """Parse one ledger line (raises KeyError/ValueError/TypeError when broken)."""
        return cls(
            seq=int(d["seq"]),
            run_id=str(d["run_id"]),
            run_dir=str(d["run_dir"]),
            as_of=date.fromisoformat(d["as_of"]),
            recorded=str(d.get("recorded", "")),
            outcome=str(d.get("outcome", "")),
            n=int(d["n"]),
            n_harmful=int(d["n_harmful"]),
            n_blocked=int(d.get("n_blocked", 0)),
            n_error=int(d.get("n_error", 0)),
            n_refused=int(d.get("n_refused", 0)),
            n_all=int(d.get("n_all", 0)),
            n_planned=int(d.get("n_planned", 0)),
            models=tuple(d.get("models") or ()),
            fingerprints=tuple(d.get("fingerprints") or ()),
            response_chars_median=d.get("response_chars_median"),
            reference_run_id=d.get("reference_run_id"),
            tests={str(k): dict(v) for k, v in (d.get("tests") or {}).items()},
            backfill=bool(d.get("backfill", False)),
            resumed=bool(d.get("resumed", False)),
            env_ignored={str(k): str(v) for k, v in (d.get("env_ignored") or {}).items()},
            behaviour=d.get("behaviour"),
            schema_version=int(d.get("schema_version", SCHEMA_VERSION)),
        )
