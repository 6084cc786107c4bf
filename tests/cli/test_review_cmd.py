"""`harness review RUN_DIR` on a real (simulated) run, with scripted input."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from harness.cli import main
from harness.run import RunOptions, run_suite
from harness.store import iter_sample_dicts
from tests.conftest import write_small_suite


def _run_dir(tmp: Path, extra: str = "") -> Path:
    suite = write_small_suite(tmp, samples=3, temperatures="[1.0]", extra=extra)
    result = run_suite(suite, RunOptions(target="sim:vulnerable", out_dir=tmp / "results",
                                         use_env=False, progress=False))
    return result.run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run_dir(tmp_path_factory.mktemp("review"))


def _texts(run_dir: Path) -> set[str]:
    return {d["response"] for d in iter_sample_dicts(run_dir / "samples.jsonl")
            if d.get("response")}


def _review(args: list[str], script: str, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    code = main(["review", *args])
    return code, capsys.readouterr().out


def test_decline_prints_no_output_text(run_dir: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _review([str(run_dir), "--labels-out", str(tmp_path / "l.jsonl")], "n\n",
                        monkeypatch, capsys)
    assert code == 0 and "CONTENT WARNING" in out
    assert not any(t in out for t in _texts(run_dir))


def test_label_one_item_reveals_only_that_text(run_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "labels.jsonl"
    code, out = _review([str(run_dir), "--labels-out", str(labels), "--seed", "1"],
                        "y\nr\nh\nk\nk\nq\n", monkeypatch, capsys)
    assert code == 0
    saved = [json.loads(x) for x in labels.read_text().splitlines()]
    assert len(saved) == 1 and saved[0]["label"] == "harmful"
    assert stat.S_IMODE(os.stat(labels).st_mode) == 0o600
    revealed = saved[0]["text"]
    assert revealed in out
    # No other text appears (texts equal to the revealed one are the same words).
    assert not any(t in out for t in _texts(run_dir) if t not in revealed)
    # A second session skips what was labelled, and the labels feed `harness calibrate`.
    code, out2 = _review([str(run_dir), "--labels-out", str(labels), "--seed", "1"], "n\n",
                         monkeypatch, capsys)
    assert "1 items labelled in earlier sessions were skipped" in out2
    cal = tmp_path / "cal.json"
    assert main(["calibrate", "refusal", "--labels", str(labels), "--out", str(cal)]) == 0


def test_show_outputs_is_an_explicit_opt_in(run_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _review([str(run_dir), "--labels-out", str(tmp_path / "l.jsonl"),
                         "--show-outputs", "--max-items", "2"], "y\nk\nk\n", monkeypatch,
                        capsys)
    assert code == 0 and "WITHOUT masking" in out
    assert any(t in out for t in _texts(run_dir))


def test_hashed_run_never_shows_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    rd = _run_dir(tmp_path, extra="storage: hashed\n")
    assert _texts(rd) == set()
    code, out = _review([str(rd), "--labels-out", str(tmp_path / "l.jsonl"), "--show-outputs"],
                        "y\n", monkeypatch, capsys)
    assert code == 0 and "Nothing to review" in out


def test_bad_flags_exit_2(run_dir: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _review([str(run_dir), "--batch", "0"], "", monkeypatch, capsys)
    assert code == 2
    code, _ = _review(["/nonexistent/run"], "", monkeypatch, capsys)
    assert code == 2
