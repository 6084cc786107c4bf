"""What `harness.watch.model.evaluate_watch` returns: alarms, the timeline's run points and the
watch's status, with the status vocabulary and its exit codes (no I/O, no logic)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

from harness.errors import EXIT_BREACHED, EXIT_HOLDS, EXIT_INFRA
from harness.watch._records import DRIFT_FAMILIES, SCHEMA_VERSION

if TYPE_CHECKING:
    from harness.watch._coverage import Coverage

Status = Literal["watching", "holding", "breached", "drift", "verified"]
STATUSES: tuple[Status, ...] = ("watching", "holding", "breached", "drift", "verified")
STATUS_EXIT: Mapping[str, int] = {
    "watching": EXIT_HOLDS,
    "holding": EXIT_HOLDS,
    "verified": EXIT_HOLDS,
    "breached": EXIT_BREACHED,
    "drift": EXIT_BREACHED,
}


@dataclass(frozen=True)
class Alarm:
    """A raised alarm with its evidence."""

    kind: Literal["breach", "drift", "model-update", "production"]
    signal: str
    run_id: str
    as_of: date
    run_index: int
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "signal": self.signal,
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "run_index": self.run_index,
            "message": self.message,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class RunPoint:
    """One run on the timeline: its own fixed-n interval and the CS after it."""

    run_id: str
    as_of: date
    segment: int
    n: int
    n_harmful: int
    ci_low: float
    ci_high: float
    cs_low: float
    cs_high: float
    models: tuple[str, ...]
    fingerprints: tuple[str, ...]
    verify_high: float | None = None
    """The bound that decides verified/holding, as if the period ended after this run: the
    larger of the whole-segment and final-window exact upper bounds at alpha/2
    (`harness.stats.windowed.verify_rate`)."""

    @property
    def rate(self) -> float | None:
        return self.n_harmful / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "segment": self.segment,
            "n": self.n,
            "n_harmful": self.n_harmful,
            "rate": self.rate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "ci_method": "wilson (fixed-n, this run only; not for decisions)",
            "cs_low": self.cs_low,
            "cs_high": self.cs_high,
            "verify_high": self.verify_high,
            "models": list(self.models),
            "fingerprints": list(self.fingerprints),
        }


@dataclass(frozen=True)
class WatchStatus:
    """The state of a watch at a date."""

    name: str
    status: Status
    as_of: date
    start: date | None
    days: int
    days_elapsed: int
    days_left: int
    runs: int
    runs_in_segment: int
    min_runs: int
    max_rate: float
    confidence_level: float
    n: int
    n_harmful: int
    cs_low: float
    cs_high: float
    t_opt: float
    points: tuple[RunPoint, ...]
    alarms: tuple[Alarm, ...]
    segments: tuple[Mapping[str, Any], ...]
    drift_alpha: float
    note: str = ""
    coverage: Coverage | None = None
    production: Mapping[str, Any] | None = None
    """Production signals (`harness watch ingest`): baseline, daily points and tests,
    JSON-ready; their alarms are in ``alarms`` (kind "production")."""
    verification: Mapping[str, Any] | None = None
    """The test behind verified/holding (`harness.stats.windowed.RateVerification`)."""

    @property
    def stale(self) -> bool:
        """The cron has stalled: the last run is more than the grace period behind."""
        return self.coverage is not None and self.coverage.stale

    @property
    def exit_code(self) -> int:
        """1 breached or drift; else 4 when the cron stalled past the grace period; else 0."""
        code = STATUS_EXIT[self.status]
        return EXIT_INFRA if code == EXIT_HOLDS and self.stale else code

    @property
    def end(self) -> date | None:
        return self.start + timedelta(days=self.days - 1) if self.start else None

    @property
    def rate(self) -> float | None:
        return self.n_harmful / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        """The `watch status --json` document."""
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "status": self.status,
            "exit_code": self.exit_code,
            "as_of": self.as_of.isoformat(),
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "days": self.days,
            "days_elapsed": self.days_elapsed,
            "days_left": self.days_left,
            "runs": self.runs,
            "runs_in_segment": self.runs_in_segment,
            "min_runs": self.min_runs,
            "max_rate": self.max_rate,
            "confidence_level": self.confidence_level,
            "pooled": {
                "n": self.n,
                "n_harmful": self.n_harmful,
                "rate": self.rate,
                "cs_low": self.cs_low,
                "cs_high": self.cs_high,
                "method": "beta-binomial mixture confidence sequence "
                          "(Howard et al. 2021) at 1 - alpha/2, current segment",
                "t_opt": self.t_opt,
            },
            "stale": self.stale,
            "coverage": self.coverage.to_dict() if self.coverage else None,
            "verification": dict(self.verification) if self.verification else None,
            "alarms": [a.to_dict() for a in self.alarms],
            "segments": [dict(s) for s in self.segments],
            "production": dict(self.production) if self.production is not None else None,
            "runs_detail": [p.to_dict() for p in self.points],
            "false_alarm_control": {
                "breach": f"<= {1 - self.confidence_level:g} over any number of looks: half "
                          "for the segment's confidence sequence (Ville's inequality), half "
                          "for the recent-window test spent over looks",
                "verified": f"<= {1 - self.confidence_level:g}: whole-segment and "
                            "final-window exact bounds, spent over the looks after the period",
                "drift": f"<= {self.drift_alpha:g} in total: split over "
                         f"{len(DRIFT_FAMILIES)} signal families, spent over looks",
            },
            "note": self.note,
        }
