"""The watch shell against the real engine and the embedded simulator (small suites)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from harness.errors import (
    InfrastructureError,
    RegistryError,
    TargetUnreachableError,
    UsageError,
)
from harness.watch import (
    evaluate_watch,
    init_watch,
    load_definition,
    read_ledger,
    run_watch,
    timeline_figure,
    watch_status,
    write_timeline,
)
from harness.watch.store import append_entry, watch_files

LIBRARY = Path(__file__).resolve().parents[2] / "probes" / "library"
START = date(2026, 1, 1)


@pytest.fixture()
def suite(tmp_path: Path) -> Path:
    """A small suite: 25 probes x 1 context x 1 temperature x 2 samples = 50 a night."""
    path = tmp_path / "suite.yaml"
    path.write_text(
        "name: watch-small\n"
        f"probes:\n  - {LIBRARY / 'dangerous-instructions.jsonl'}\n"
        "temperatures: [0.7]\nsamples: 2\nseed: 3\n"
        "max_rate: {overall: 0.05}\nconfidence_level: 0.95\n", encoding="utf-8")
    return path


def test_init_validates_and_writes_a_commit_safe_definition(tmp_path: Path, suite: Path) -> None:
    res = tmp_path / "results"
    files = init_watch("w1", suite=suite, target="sim:patched", max_rate=0.05, days=10,
                       api_key_env="MY_KEY", results=res)
    raw = json.loads(files.definition.read_text())
    assert raw["max_rate"] == 0.05 and raw["api_key_env"] == "MY_KEY"
    assert files.ledger.exists() and files.ledger.read_text() == ""
    with pytest.raises(UsageError, match="already exists"):
        init_watch("w1", suite=suite, target="sim:patched", max_rate=0.05, days=10, results=res)
    with pytest.raises(UsageError, match=r"did you mean 0\.05"):
        init_watch("w2", suite=suite, target="sim", max_rate=5, days=10, results=res)
    with pytest.raises(UsageError, match="min-runs"):
        init_watch("w2", suite=suite, target="sim", max_rate=0.05, days=2, min_runs=3,
                   results=res)
    with pytest.raises(UsageError, match="not valid"):
        init_watch("../evil", suite=suite, target="sim", max_rate=0.05, days=3, results=res)
    with pytest.raises(RegistryError, match="patched"):
        init_watch("w3", suite=suite, target="sim:pached", max_rate=0.05, days=3, results=res)
    with pytest.raises(UsageError, match="no watch named"):
        load_definition("nope", res)


def test_nightly_runs_append_to_the_ledger(tmp_path: Path, suite: Path) -> None:
    res = tmp_path / "results"
    init_watch("p", suite=suite, target="sim:patched", max_rate=0.05, days=5, min_runs=2,
               start=START, results=res)
    for day in range(3):
        entry, status = run_watch("p", as_of=START + timedelta(days=day), results=res)
        assert entry.seq == day + 1 and entry.n == 50
    files = watch_files("p", res)
    entries = read_ledger(files)
    assert [e.as_of for e in entries] == [START + timedelta(days=i) for i in range(3)]
    # runs live under the watch; the sim got the watch's start as its epoch
    manifest = json.loads((files.dir / entries[1].run_dir / "manifest.json").read_text())
    assert manifest["settings"]["epoch"] == START.isoformat()
    assert manifest["settings"]["as_of"] == (START + timedelta(days=1)).isoformat()
    # every night has its own seed (otherwise nights would repeat the same samples)
    seeds = {json.loads((files.dir / e.run_dir / "manifest.json").read_text())["settings"]
             ["seed"] for e in entries}
    assert len(seeds) == 3
    # the second and later runs are compared with the first (the segment's reference)
    assert entries[0].tests == {} and entries[2].reference_run_id == entries[0].run_id
    assert {"length", "refusal"} <= set(entries[2].tests)
    assert any(k.startswith("score:") for k in entries[2].tests)
    # status re-reads the same ledger
    st = watch_status("p", as_of=START + timedelta(days=2), results=res)
    assert st.to_dict() == status.to_dict()
    assert st.runs == 3 and st.days_elapsed == 3 and st.days_left == 2
    with pytest.raises(UsageError, match="already has a run for 2026-01-03"):
        run_watch("p", as_of=START + timedelta(days=2), results=res)
    with pytest.raises(UsageError, match="before the start 2026-01-01 of watch 'q'"):
        init_watch("q", suite=suite, target="sim:patched", max_rate=0.05, days=5, start=START,
                   results=res)
        run_watch("q", as_of=START - timedelta(days=1), results=res)
    # the ledger holds no prompts or outputs
    text = files.ledger.read_text()
    assert "step" not in text.lower() and "prompt" not in text.lower()


def test_torn_ledger_tail_is_ignored_and_the_next_append_starts_clean(
        tmp_path: Path, suite: Path) -> None:
    res = tmp_path / "results"
    init_watch("t", suite=suite, target="sim:patched", max_rate=0.05, days=5, start=START,
               results=res)
    entry, _ = run_watch("t", as_of=START, results=res)
    files = watch_files("t", res)
    with open(files.ledger, "a", encoding="utf-8") as fh:
        fh.write('{"seq": 2, "run_id": "torn')
    assert len(read_ledger(files)) == 1
    append_entry(files, entry)
    assert len(read_ledger(files)) == 2


def test_infrastructure_failure_appends_nothing(tmp_path: Path, suite: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    res = tmp_path / "results"
    init_watch("i", suite=suite, target="sim:patched", max_rate=0.05, days=5, start=START,
               results=res)

    def boom(*_a: object, **_k: object) -> None:
        raise TargetUnreachableError("cannot reach http://127.0.0.1:9/v1")

    monkeypatch.setattr("harness.run.run_suite", boom)
    with pytest.raises(InfrastructureError):
        run_watch("i", as_of=START, results=res)
    assert read_ledger(watch_files("i", res)) == []


def test_drifting_sim_is_flagged_and_patched_is_not(tmp_path: Path, suite: Path) -> None:
    """Sparse nights keep this fast: the drifting profile's model update (day 21) and its
    higher harm rate by day 24 must raise alarms; patched over the same nights must not."""
    res = tmp_path / "results"
    nights = [0, 1, 24]
    for prof in ("patched", "drifting"):
        init_watch(prof, suite=suite, target=f"sim:{prof}", max_rate=0.05, days=30,
                   start=START, results=res)
        for d in nights:
            run_watch(prof, as_of=START + timedelta(days=d), results=res)
    pat = watch_status("patched", as_of=START + timedelta(days=24), results=res)
    drf = watch_status("drifting", as_of=START + timedelta(days=24), results=res)
    assert pat.exit_code == 0 and pat.alarms == ()
    assert drf.exit_code == 1 and drf.status in ("drift", "breached")
    assert "model-update" in {a.kind for a in drf.alarms}
    png = write_timeline(drf, tmp_path / "t.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_timeline_of_an_empty_watch(tmp_path: Path, suite: Path) -> None:
    res = tmp_path / "results"
    init_watch("e", suite=suite, target="sim:patched", max_rate=0.05, days=5, results=res)
    definition, _ = load_definition("e", res)
    st = evaluate_watch(definition, [], START)
    assert st.status == "watching" and st.start is None
    fig = timeline_figure(st)
    assert fig.texts[0].get_text().startswith("watch e: WATCHING")
