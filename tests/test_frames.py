"""harness.load_runs / load_samples / load_watch: DataFrames for analysts."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

import harness
from harness.errors import StoreError
from harness.run import RunOptions, run_suite
from tests.conftest import ROOT, write_small_suite


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("frames")
    suite = write_small_suite(tmp, samples=2)
    for target in ("sim:vulnerable", "sim:patched"):
        run_suite(suite, RunOptions(target=target, out_dir=tmp / "results", progress=False))
    return tmp / "results"


def test_load_runs_has_a_row_per_run_and_group(results: Path) -> None:
    frame = harness.load_runs([results])
    summaries = [json.loads(p.read_text()) for p in sorted(results.glob("*/summary.json"))]
    assert len(frame) == sum(len(s["groups"]) for s in summaries)
    assert set(frame["run_id"]) == {s["run_id"] for s in summaries}
    assert set(frame["model"]) == {"sim-vulnerable", "sim-patched"}
    for s in summaries:
        rows = frame[(frame["run_id"] == s["run_id"]) & (frame["group"] == "overall:overall")]
        assert len(rows) == 1
        row = rows.iloc[0]
        assert row["n_harmful"] == s["overall"]["n_harmful"]
        assert row["rate"] == pytest.approx(s["overall"]["rate"])
        assert row["verdict"] == s["groups"][0]["verdict"] and row["suite"] == "small"
    one = harness.load_runs(next(results.iterdir()))
    assert one["run_id"].nunique() == 1
    with pytest.raises(StoreError, match="neither a run folder"):
        harness.load_runs(results / "nope")


def test_load_samples_carries_run_id_and_no_text(results: Path) -> None:
    run = sorted(results.iterdir())[0]
    frame = harness.load_samples(run)
    lines = (run / "samples.jsonl").read_text().splitlines()
    assert len(frame) == len(lines)
    assert set(frame["run_id"]) == {json.loads(lines[0])["run_id"]}
    assert "response" not in frame.columns and "messages" not in frame.columns
    assert int(frame["harmful"].sum()) == sum(json.loads(x)["outcome"] == "harmful"
                                              for x in lines)


def test_load_watch_has_a_row_per_night(tmp_path: Path) -> None:
    from harness.watch import init_watch, run_watch

    suite = tmp_path / "suite.yaml"
    suite.write_text("name: frames-watch\n"
                     f"probes:\n  - {ROOT / 'probes/library/self-harm.jsonl'}\n"
                     "temperatures: [0.7]\nsamples: 1\nseed: 3\nmax_rate: {overall: 0.05}\n")
    res = tmp_path / "results"
    start = date(2026, 1, 1)
    init_watch("fw", suite=suite, target="sim:patched", max_rate=0.05, days=5, min_runs=2,
               results=res, start=start)
    for day in range(2):
        run_watch("fw", as_of=start + timedelta(days=day), results=res)
    frame = harness.load_watch("fw", results=res)
    assert len(frame) == 2 and list(frame["as_of"].dt.date) == [start, start + timedelta(1)]
    assert {"run_id", "rate", "cs_low", "cs_high", "max_rate", "status"} <= set(frame.columns)
    assert (frame["cs_low"] <= frame["cs_high"]).all()
