"""`harness report RUN_DIR --format html|md|json|junit`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.run import RunOptions, run_suite
from tests.conftest import write_small_suite


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    suite = write_small_suite(tmp, samples=3)
    return run_suite(suite, RunOptions(target="sim:vulnerable", out_dir=tmp / "results",
                                       progress=False)).run_dir


def test_each_format(run_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert main(["report", str(run_dir), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == summary
    assert main(["report", str(run_dir), "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith(f"# Run {summary['run_id']}")
    assert main(["report", str(run_dir), "--format", "junit", "--inconclusive", "skip"]) == 0
    root = ET.fromstring(capsys.readouterr().out)
    assert int(root.get("tests")) == sum(1 for g in summary["groups"] if "max_rate" in g)
    out = tmp_path / "r.html"
    assert main(["report", str(run_dir), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"format": "html", "path": str(out)}
    assert 'id="verdict-table"' in out.read_text()


def test_include_outputs_writes_a_separate_flagged_copy(run_dir: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    assert main(["report", str(run_dir), "--include-outputs"]) == 0
    assert "report-with-outputs.html" in capsys.readouterr().out
    html = (run_dir / "report-with-outputs.html").read_text()
    assert 'id="contains-outputs"' in html
    harmful = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
    harmful = [d for d in harmful if d["outcome"] == "harmful" and d.get("response")]
    assert harmful and "[step withheld]" in html  # the simulator's placeholder text
    assert 'id="contains-outputs"' not in (run_dir / "report.html").read_text()


def test_errors_are_json_with_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope"), "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["type"] == "StoreError" and "nope" in err["message"] and err["exit_code"] == 2
    assert main(["report", "--json"]) == 2
    cap = capsys.readouterr()
    assert "RUN_DIR" in json.loads(cap.out)["error"]["message"]
    assert "usage:" in cap.err
    assert main(["report", str(tmp_path / "nope")]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "no such run folder" in cap.err


def test_a_watch_night_report_carries_the_watch_timeline(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          ) -> None:
    from datetime import date

    from harness.watch import init_watch, run_watch

    suite = write_small_suite(tmp_path, samples=1)
    res = tmp_path / "results"
    init_watch("nightly", suite=suite, target="sim:patched", max_rate=0.05, days=5,
               min_runs=2, results=res, start=date(2026, 1, 1))
    entry, _ = run_watch("nightly", as_of=date(2026, 1, 1), results=res)
    night = res / "watches" / "nightly" / "runs" / entry.run_id
    assert main(["report", str(night), "--out", str(tmp_path / "n.html")]) == 0
    html = (tmp_path / "n.html").read_text()
    assert 'id="plot-watch-timeline"' in html and "Watch nightly: timeline" in html
    plain = tmp_path / "plain.html"
    run_dir = run_suite(suite, RunOptions(target="sim", out_dir=tmp_path / "other",
                                          progress=False)).run_dir
    assert main(["report", str(run_dir), "--out", str(plain)]) == 0  # no watch: no timeline
    assert "plot-watch-timeline" not in plain.read_text()
