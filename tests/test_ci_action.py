"""The GitHub Action (action.yml) and its script (.ci/action-gate.sh); the action run step by
step as GitHub would, and the example workflows: tests/test_action_steps.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.run import RunOptions, run_suite
from tests.conftest import ROOT, write_small_suite

SCRIPT = ROOT / ".ci" / "action-gate.sh"


def test_action_inputs_reach_the_script() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    inputs = set(action["inputs"])
    text = (ROOT / "action.yml").read_text()
    used = set(re.findall(r"\$\{\{\s*inputs\.([a-z-]+)\s*\}\}", text))
    assert used <= inputs and inputs - used == set()
    gate = next(s for s in action["runs"]["steps"] if s.get("id") == "gate")
    script = SCRIPT.read_text()
    for var in gate["env"]:
        assert var in script, f"{var} is set by action.yml but not read by the script"
    for out in action["outputs"].values():
        name = re.search(r"steps\.gate\.outputs\.([a-z-]+)", out["value"]).group(1)
        assert f"{name}=" in script


@pytest.mark.skipif(sys.platform == "win32", reason="bash script")
def test_the_gate_script_runs_compares_and_exits_with_the_worse_code(tmp_path: Path) -> None:
    suite = write_small_suite(tmp_path, samples=5)
    base = run_suite(suite, RunOptions(target="sim:patched", out_dir=tmp_path / "base",
                                       progress=False)).run_dir
    out = tmp_path / "gate"
    gh_output = tmp_path / "gh-output"
    env = {**os.environ, "HARNESS_GATE_SUITE": str(suite), "HARNESS_GATE_TARGET": "sim",
           "HARNESS_GATE_OUT": str(out), "HARNESS_GATE_BASELINE": str(base),
           "HARNESS_GATE_HARNESS": str(Path(sys.executable).parent / "harness"),
           "HARNESS_GATE_RUN_ARGS": "--samples 5", "GITHUB_OUTPUT": str(gh_output)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=240)
    outputs = dict(line.split("=", 1) for line in gh_output.read_text().splitlines())
    assert proc.returncode == int(outputs["exit-code"]), proc.stderr
    # The vulnerable simulator breaches (1) and regresses against the patched baseline (1).
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert Path(outputs["report"]).is_file() and (out / "junit-run.xml").is_file()
    assert (out / "junit-compare.xml").is_file()
    assert "regression" in (out / "compare.json").read_text()
    env["HARNESS_GATE_SUITE"] = str(tmp_path / "missing.yaml")
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr
