"""Retention: durations, which folders prune removes, and what it never touches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.retention import parse_duration, prune

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _run(root: Path, name: str, *, finished: datetime | None = None,
         started: datetime | None = None, run_id: str | None = "x") -> Path:
    d = root / name
    d.mkdir(parents=True)
    m: dict[str, object] = {"run_id": run_id or None}
    if finished:
        m["finished"] = finished.isoformat()
    if started:
        m["started"] = started.isoformat()
    (d / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    (d / "samples.jsonl").write_text("{}\n", encoding="utf-8")
    return d


@pytest.mark.parametrize(("text", "delta"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2)),
    ("90m", timedelta(minutes=90)), (" 5D ", timedelta(days=5)), ("45s", timedelta(seconds=45)),
])
def test_parse_duration(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize("bad", ["30", "d", "-3d", "0d", "3y", "", "1.5d"])
def test_bad_duration(bad: str) -> None:
    with pytest.raises(UsageError, match="--older-than"):
        parse_duration(bad)


def test_prune_by_finished_then_started(tmp_path: Path) -> None:
    old = _run(tmp_path, "old", finished=NOW - timedelta(days=40))
    new = _run(tmp_path, "new", finished=NOW - timedelta(days=3))
    # finished wins over started: started long ago but finished recently -> kept
    long_run = _run(tmp_path, "long", started=NOW - timedelta(days=60),
                    finished=NOW - timedelta(days=1))
    unfinished = _run(tmp_path, "unfinished", started=NOW - timedelta(days=31))
    nodate = _run(tmp_path, "nodate")
    noid = _run(tmp_path, "noid", finished=NOW - timedelta(days=90), run_id=None)
    (tmp_path / "calibrations").mkdir()
    (tmp_path / "calibrations" / "judge-1.json").write_text("{}", encoding="utf-8")
    other = tmp_path / "notes"
    other.mkdir()
    result = prune(tmp_path, timedelta(days=30), now=NOW)
    assert {r.path for r in result.removed} == {old, unfinished}
    assert not old.exists() and not unfinished.exists()
    assert new.exists() and long_run.exists() and nodate.exists() and noid.exists()
    assert other.exists() and (tmp_path / "calibrations" / "judge-1.json").exists()
    assert {r.path for r in result.skipped} == {nodate, noid}


def test_dry_run_removes_nothing(tmp_path: Path) -> None:
    old = _run(tmp_path, "old", finished=NOW - timedelta(days=40))
    result = prune(tmp_path, timedelta(days=30), now=NOW, dry_run=True)
    assert [r.path for r in result.removed] == [old] and old.exists()


def _ledger_line(run_id: str) -> str:
    return json.dumps({"seq": 1, "run_id": run_id, "run_dir": f"runs/{run_id}",
                       "as_of": "2026-01-01", "n": 10, "n_harmful": 0}) + "\n"


def test_watches_untouched_unless_included(tmp_path: Path) -> None:
    w = tmp_path / "watches" / "w1"
    old_watch_run = _run(w / "runs", "r-old", finished=NOW - timedelta(days=50))
    reference = _run(w / "runs", "r-ref", finished=NOW - timedelta(days=60))
    (w / "ledger.jsonl").write_text(_ledger_line("r-ref"), encoding="utf-8")
    (w / "watch.json").write_text("{}", encoding="utf-8")
    prune(tmp_path, timedelta(days=30), now=NOW)
    assert old_watch_run.exists()
    result = prune(tmp_path, timedelta(days=30), now=NOW, include_watches=True)
    # the unreferenced (failed) run goes; the ledger's run, older still, stays
    assert [r.path for r in result.removed] == [old_watch_run] and not old_watch_run.exists()
    assert reference.exists()
    assert (w / "ledger.jsonl").exists() and (w / "watch.json").exists()


def test_a_broken_watch_ledger_keeps_every_run(tmp_path: Path) -> None:
    w = tmp_path / "watches" / "w1"
    old = _run(w / "runs", "r-old", finished=NOW - timedelta(days=50))
    (w / "ledger.jsonl").write_text("{}\n", encoding="utf-8")
    result = prune(tmp_path, timedelta(days=30), now=NOW, include_watches=True)
    assert result.removed == [] and old.exists()


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = _run(tmp_path / "outside", "victim", finished=NOW - timedelta(days=99))
    root = tmp_path / "results"
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    prune(root, timedelta(days=1), now=NOW)
    assert outside.exists()


def test_missing_results_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such results folder"):
        prune(tmp_path / "nope", timedelta(days=1))
