"""`harness run --shard I/N` and `harness merge RUN_DIR...` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import ROOT

DEMO = str(ROOT / "suites" / "demo.yaml")


def test_shard_runs_merge_with_the_run_exit_code(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    for i in (1, 2):
        code = main(["run", DEMO, "--shard", f"{i}/2", "--samples", "2", "--out", str(out),
                     "--run-id", f"s{i}", "--quiet"])
        assert code == 1
        shard = json.loads((out / f"s{i}" / "manifest.json").read_text())["shard"]
        assert (shard["index"], shard["count"]) == (i, 2)
    capsys.readouterr()
    code = main(["merge", str(out / "s1"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "shard 2/2 missing" in err and "Traceback" not in err
    code = main(["merge", str(out / "s1"), str(out / "s2"), "--out", str(out), "--run-id", "m",
                 "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and summary["outcome"] == "breached" and summary["run_id"] == "m"
    assert summary["errors"]["n"] == 288 * 2  # 288 cells x 2 samples


def test_bad_shard_flag_and_resume_with_another_shard(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", DEMO, "--shard", "3/2", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--shard '3/2'" in err and not any(tmp_path.iterdir())
    main(["run", DEMO, "--shard", "1/2", "--samples", "1", "--out", str(tmp_path),
          "--run-id", "s1", "--quiet"])
    capsys.readouterr()
    code = main(["run", "--resume", str(tmp_path / "s1"), "--shard", "2/2"])
    err = capsys.readouterr().err
    assert code == 2 and "--shard 2/2 (the run's: 1/2)" in err
