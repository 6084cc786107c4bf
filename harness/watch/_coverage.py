"""Which nights of a watch ran, which are missing, and whether the cron has stalled (pure).

A watch's period is nights ``start .. start + days - 1``. A night is *due* once the
evaluation date reaches it; a due night before the evaluation date without a run is
*missing* (the evaluation date itself is not missing yet: tonight's cron may still come).
`verified` needs at least ``min_coverage`` of the period's nights to have a run, so a watch
whose cron skipped most nights cannot claim the whole period held. The cron is *stale* when
the last run is more than ``grace_days`` nights behind the night due.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from harness.watch._records import LedgerEntry, WatchDefinition


@dataclass(frozen=True)
class Coverage:
    """Nights run, due and missing at one evaluation date."""

    start: date | None
    end: date | None
    nights_run: tuple[date, ...]
    nights_due: int
    nights_missing: tuple[date, ...]
    nights_backfilled: tuple[date, ...]
    nights_needed: int
    """Nights with a run the period needs for `verified` (ceil(min_coverage x days))."""
    min_coverage: float
    last_run: date | None
    next_due: date | None
    """The first night after the last run still inside the period (None: period complete)."""
    stale: bool
    grace_days: int
    period_over: bool

    @property
    def met(self) -> bool:
        """Whether enough of the period's nights have a run for `verified`."""
        return len(self.nights_run) >= self.nights_needed

    def to_dict(self) -> dict[str, Any]:
        """The `coverage` object of `watch status --json`."""
        return {
            "nights_run": len(self.nights_run),
            "nights_due": self.nights_due,
            "nights_missing": len(self.nights_missing),
            "missing": [d.isoformat() for d in self.nights_missing],
            "backfilled": [d.isoformat() for d in self.nights_backfilled],
            "nights_needed": self.nights_needed,
            "min_coverage": self.min_coverage,
            "met": self.met,
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "next_due": self.next_due.isoformat() if self.next_due else None,
            "stale": self.stale,
            "grace_days": self.grace_days,
        }


def nights_needed(days: int, min_coverage: float) -> int:
    """Nights with a run that `verified` needs: ceil(min_coverage x days), at least 1."""
    # round() first: 0.9 * 30 is 27.000000000000004 in floating point.
    return max(1, math.ceil(round(min_coverage * days, 9)))


def night_coverage(definition: WatchDefinition, entries: Sequence[LedgerEntry],
                   as_of: date, created: date | None = None) -> Coverage:
    """Coverage of the period at ``as_of`` from the ledger entries dated on or before it.

    ``created`` (the watch's creation date) anchors staleness before the first run of a
    watch without a fixed start.
    """
    d = definition
    start = d.start or (min(e.as_of for e in entries) if entries else None)
    end = start + timedelta(days=d.days - 1) if start else None
    in_period = sorted({e.as_of for e in entries
                        if start is not None and end is not None and start <= e.as_of <= end
                        and e.as_of <= as_of})
    backfilled = tuple(sorted({e.as_of for e in entries if e.backfill and e.as_of <= as_of}))
    last_run = in_period[-1] if in_period else None
    if start is None or end is None:
        due = 0
        missing: tuple[date, ...] = ()
        next_due = None
        period_over = False
        anchor = created
        horizon = as_of
    else:
        horizon = min(as_of, end)
        due = max((horizon - start).days + 1, 0)
        run_set = set(in_period)
        missing = tuple(start + timedelta(days=i) for i in range(due)
                        if start + timedelta(days=i) < as_of
                        and start + timedelta(days=i) not in run_set)
        after = (last_run + timedelta(days=1)) if last_run else start
        next_due = after if after <= end else None
        period_over = as_of >= end
        anchor = last_run or (start - timedelta(days=1))
    # Stale: the night due (today, or the period's last night) is more than grace_days past
    # the last run; a complete period is never stale.
    stale = (anchor is not None and next_due is not None
             and (horizon - anchor).days > d.grace_days)
    return Coverage(start=start, end=end, nights_run=tuple(in_period), nights_due=due,
                    nights_missing=missing, nights_backfilled=backfilled,
                    nights_needed=nights_needed(d.days, d.min_coverage),
                    min_coverage=d.min_coverage, last_run=last_run, next_due=next_due,
                    stale=stale, grace_days=d.grace_days, period_over=period_over)
