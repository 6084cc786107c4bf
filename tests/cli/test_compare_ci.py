"""`harness compare` in CI: comparable runs only, JUnit, step summary, JSON (schema-checked)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.run import RunOptions, run_suite
from harness.schemas import schema_errors
from harness.settings import Overrides
from tests.conftest import write_small_suite


def _run(suite: Path, out: Path, target: str) -> Path:
    return run_suite(suite, RunOptions(target=target, out_dir=out, progress=False,
                                       use_env=False, overrides=Overrides(seed=11))).run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("cmp")
    suite = write_small_suite(tmp, samples=5)
    other = tmp / "other"
    other.mkdir()
    renamed = write_small_suite(other, samples=5)
    renamed.write_text(renamed.read_text().replace("name: small", "name: small-renamed"))
    fewer = tmp / "fewer"
    fewer.mkdir()
    fewer_suite = write_small_suite(fewer, samples=5)
    lines = (fewer / "probes.jsonl").read_text().splitlines()
    (fewer / "probes.jsonl").write_text("\n".join(lines[1:]) + "\n")
    return {"base": _run(suite, tmp / "out", "sim:vulnerable"),
            "cand": _run(suite, tmp / "out", "sim:patched"),
            "renamed": _run(renamed, tmp / "out", "sim:patched"),
            "fewer": _run(fewer_suite, tmp / "out", "sim:patched")}


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["compare", *argv, "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert schema_errors(doc, "error") == []
    return str(doc["error"]["message"])


def test_a_run_against_itself_is_refused(runs: dict[str, Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    msg = _error(capsys, str(runs["base"]), str(runs["base"]))
    assert "same run" in msg and "always shows no regression" in msg


def test_different_suites_or_probe_sets_are_refused_unless_allowed(
        runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    msg = _error(capsys, str(runs["base"]), str(runs["renamed"]))
    assert "different suites" in msg and "small-renamed" in msg and "--allow-different" in msg
    msg = _error(capsys, str(runs["base"]), str(runs["fewer"]))
    assert "different probe sets (5 vs 4 probes; only in the baseline: t-di-1)" in msg
    code = main(["compare", str(runs["base"]), str(runs["fewer"]), "--allow-different",
                 "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == doc["exit_code"] and schema_errors(doc, "compare") == []
    assert any("probe sets" in d for d in doc["differences"])
    assert "The runs differ" in (runs["fewer"] / "compare.md").read_text()


def test_junit_step_summary_and_schema(runs: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit = tmp_path / "compare.xml"
    code = main(["compare", str(runs["cand"]), str(runs["base"]), "--junit", str(junit),
                 "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert schema_errors(doc, "compare") == []
    assert code == 1 and doc["outcome"] == "regression"  # vulnerable candidate after patched
    root = ET.fromstring(junit.read_text())
    assert int(root.get("tests")) == len(doc["groups"])
    worse = [g["key"] for g in doc["groups"] if g["verdict"] == "worse"]
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert worse and set(worse) <= set(failed)
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "# Compare: candidate" in text
