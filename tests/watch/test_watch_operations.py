"""A watch as an operational object: locks, nights, gaps, backfills, pinned settings,
a self-contained folder, resume after an interruption, and prune (real engine, sim)."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from harness.errors import InputError, RunInterrupted, StoreError, UsageError
from harness.retention import prune
from harness.watch import init_watch, read_ledger, run_watch, watch_status
from harness.watch.store import WatchLock, read_pending, watch_files

LIBRARY = Path(__file__).resolve().parents[2] / "probes" / "library"
START = date(2026, 1, 1)


def _night(d: int) -> date:
    return START + timedelta(days=d)


def _suite(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "suite.yaml"
    path.write_text(
        "name: watch-ops\n"
        f"probes:\n  - {LIBRARY / 'dangerous-instructions.jsonl'}\n"
        "temperatures: [0.7]\nsamples: 1\nseed: 3\n"
        "max_rate: {overall: 0.05}\nconfidence_level: 0.95\n", encoding="utf-8")
    return path


def _init(res: Path, suite: Path, name: str = "w", days: int = 5, max_rate: float = 0.05,
          **kw: object) -> None:
    init_watch(name, suite=suite, target="sim:patched", max_rate=max_rate, days=days,
               min_runs=2, start=START, results=res, **kw)  # type: ignore[arg-type]


def test_a_second_run_of_a_watch_is_refused_while_one_works(tmp_path: Path) -> None:
    res = tmp_path / "results"
    _init(res, _suite(tmp_path))
    with WatchLock(watch_files("w", res)), pytest.raises(StoreError,
                                                         match="another process"):
        run_watch("w", as_of=START, results=res)
    assert read_ledger(watch_files("w", res)) == []
    run_watch("w", as_of=START, results=res)  # the lock is gone with its holder
    with pytest.raises(UsageError, match="already has a run for 2026-01-01"):
        run_watch("w", as_of=START, results=res)
    assert len(read_ledger(watch_files("w", res))) == 1


def test_nights_outside_the_period_or_in_the_future_are_refused(tmp_path: Path) -> None:
    res = tmp_path / "results"
    _init(res, _suite(tmp_path), days=5)
    with pytest.raises(UsageError, match=r"after the end 2026-01-05 .*outside the period"):
        run_watch("w", as_of=_night(5), results=res)
    with pytest.raises(UsageError, match="before the start"):
        run_watch("w", as_of=_night(-1), results=res)
    with pytest.raises(UsageError, match="in the future"):
        run_watch("w", as_of=_night(2), results=res, now=START)
    assert read_ledger(watch_files("w", res)) == []


def test_gaps_backfills_and_the_coverage_rule(tmp_path: Path) -> None:
    res = tmp_path / "results"
    # max rate 0.25: 25 samples a night settle the bound within two nights
    _init(res, _suite(tmp_path), days=5, min_coverage=1.0, max_rate=0.25)
    for d in (0, 1, 4):
        run_watch("w", as_of=_night(d), results=res)
    st = watch_status("w", as_of=_night(4), results=res)
    assert st.coverage is not None
    assert [x.isoformat() for x in st.coverage.nights_missing] == ["2026-01-03", "2026-01-04"]
    assert (len(st.coverage.nights_run), st.coverage.nights_due) == (3, 5)
    # the bound may hold, but 3 of 5 nights is not the period: not verified
    assert st.status == "holding" and "only 3 of 5 nights ran" in st.note
    entry, _ = run_watch("w", as_of=_night(2), results=res)
    assert entry.backfill and entry.seq == 4
    entry, after = run_watch("w", as_of=_night(3), results=res)
    assert entry.backfill
    assert after.coverage is not None and after.coverage.met
    assert after.coverage.nights_backfilled == (_night(2), _night(3))
    doc = watch_status("w", as_of=_night(4), results=res).to_dict()
    assert doc["coverage"]["missing"] == [] and doc["coverage"]["backfilled"] == [
        "2026-01-03", "2026-01-04"]
    assert doc["status"] == "verified"
    with pytest.raises(UsageError, match="already has a run for 2026-01-03"):
        run_watch("w", as_of=_night(2), results=res)


def test_a_stalled_cron_is_stale_and_status_exits_4(tmp_path: Path) -> None:
    res = tmp_path / "results"
    _init(res, _suite(tmp_path), days=10, grace_days=1)
    run_watch("w", as_of=_night(0), results=res)
    run_watch("w", as_of=_night(1), results=res)
    assert not watch_status("w", as_of=_night(2), results=res).stale  # tonight may come
    late = watch_status("w", as_of=_night(3), results=res)
    assert late.stale and late.exit_code == 4 and late.status in ("watching", "holding")
    assert late.coverage is not None and late.coverage.next_due == _night(2)
    assert late.to_dict()["stale"] is True and late.to_dict()["exit_code"] == 4


def test_status_and_list_write_nothing(tmp_path: Path) -> None:
    res = tmp_path / "results"
    _init(res, _suite(tmp_path))
    run_watch("w", as_of=START, results=res)
    wdir = watch_files("w", res).dir

    def snapshot() -> dict[str, float]:
        return {str(p): p.stat().st_mtime_ns for p in wdir.rglob("*")}

    before = snapshot()
    watch_status("w", results=res)
    from harness.cli import main

    assert main(["watch", "status", "w", "--results", str(res)]) in (0, 4)
    assert main(["watch", "list", "--results", str(res)]) == 0
    assert snapshot() == before


def test_environment_overrides_are_ignored_and_recorded(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    res = tmp_path / "results"
    _init(res, _suite(tmp_path))
    monkeypatch.setenv("HARNESS_TEMPERATURES", "0")
    monkeypatch.setenv("HARNESS_SAMPLES", "3")
    monkeypatch.setenv("HARNESS_CONFIDENCE", "0.5")
    entry, _ = run_watch("w", as_of=START, results=res)
    files = watch_files("w", res)
    settings = json.loads((files.dir / entry.run_dir / "manifest.json").read_text())["settings"]
    assert settings["temperatures"] == [0.7] and settings["samples"] == 1
    assert entry.env_ignored == {"HARNESS_CONFIDENCE": "0.5", "HARNESS_SAMPLES": "3",
                                 "HARNESS_TEMPERATURES": "0"}
    assert read_ledger(files)[0].env_ignored == entry.env_ignored


def test_the_watch_folder_is_self_contained(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    suite = _suite(project / "suites")
    monkeypatch.chdir(project)
    _init(Path("results"), Path("suites/suite.yaml"))
    raw = json.loads((project / "results/watches/w/watch.json").read_text())
    assert raw["suite"] == str(suite.resolve()) and raw["temperatures"] == [0.7]
    assert raw["suite_relative"] == "../../../suites/suite.yaml"
    # cron runs from another folder
    monkeypatch.chdir(tmp_path)
    run_watch("w", as_of=START, results=project / "results")
    # the whole project moved (a fresh checkout elsewhere): the relative path finds the suite
    moved = tmp_path / "moved"
    shutil.move(project, moved)
    run_watch("w", as_of=_night(1), results=moved / "results")
    os.remove(moved / "suites" / "suite.yaml")
    with pytest.raises(InputError, match=r"watch 'w' .*watch\.json.*suite file is not at"):
        run_watch("w", as_of=_night(2), results=moved / "results")


def test_a_changed_suite_is_refused(tmp_path: Path) -> None:
    res = tmp_path / "results"
    suite = _suite(tmp_path)
    _init(res, suite)
    suite.write_text(suite.read_text().replace("samples: 1", "samples: 2"), encoding="utf-8")
    with pytest.raises(InputError, match="changed since watch 'w' was created"):
        run_watch("w", as_of=START, results=res)


def test_an_interrupted_night_is_pending_and_resume_finishes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = tmp_path / "results"
    _init(res, _suite(tmp_path))
    import harness.run as run

    real_finish = run.finish_run

    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "finish_run", interrupted)
    with pytest.raises(RunInterrupted, match=r"harness watch run w --resume") as info:
        run_watch("w", as_of=START, results=res)
    assert info.value.exit_code == 130
    files = watch_files("w", res)
    pending = read_pending(files)
    assert pending is not None and pending.night == START
    assert read_ledger(files) == []
    with pytest.raises(UsageError, match="--resume"):
        run_watch("w", as_of=_night(1), results=res)
    with pytest.raises(UsageError, match="not 2026-01-02"):
        run_watch("w", as_of=_night(1), results=res, resume=True)
    monkeypatch.setattr(run, "finish_run", real_finish)
    entry, _ = run_watch("w", results=res, resume=True)
    assert entry.resumed and entry.as_of == START and entry.run_id == pending.run_id
    assert entry.n == 25 and read_pending(files) is None
    with pytest.raises(UsageError, match="no interrupted night"):
        run_watch("w", results=res, resume=True)


def test_cli_interrupt_names_watch_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    res = tmp_path / "results"
    _init(res, _suite(tmp_path))

    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("harness.run.finish_run", interrupted)
    assert main(["watch", "run", "w", "--as-of", START.isoformat(), "--quiet",
                 "--results", str(res)]) == 130
    err = capsys.readouterr().err
    assert "finish the night with `harness watch run w --resume`" in err
    assert "harness run --resume" not in err


def test_prune_keeps_the_runs_a_watch_references(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    res = tmp_path / "results"
    _init(res, _suite(tmp_path))
    for d in range(2):
        run_watch("w", as_of=_night(d), results=res)
    files = watch_files("w", res)
    stray = files.runs / "20250101-000000-failed-000000"
    shutil.copytree(files.dir / read_ledger(files)[0].run_dir, stray)
    manifest = json.loads((stray / "manifest.json").read_text())
    manifest["run_id"] = stray.name
    (stray / "manifest.json").write_text(json.dumps(manifest))
    result = prune(res, timedelta(days=1), now=datetime.now(UTC) + timedelta(days=400),
                   include_watches=True)
    assert [r.path for r in result.removed] == [stray]
    assert all((files.dir / e.run_dir).is_dir() for e in read_ledger(files))
    run_watch("w", as_of=_night(2), results=res)  # later nights still find their reference
