"""The composite GitHub Action executed as GitHub would run it, without GitHub.

GitHub cannot be reached from the test machine, so `run_composite` plays the runner's part:
it parses action.yml with PyYAML, substitutes the `${{ ... }}` expressions the action uses
(inputs with their defaults, `github.action_path`, `steps.<id>.outputs.<name>`; any other
expression fails the test), runs every `run:` step with `bash --noprofile --norc -eo pipefail`
(GitHub's command for `shell: bash`) and the step's `env:`, gives each step its own
GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, reads the outputs back (`name=value` and the
`name<<DELIM` form), stops at the first failing step, and evaluates the action's `outputs:`.
`uses:` steps (actions/setup-python) are recorded, not run: the Python on PATH stands in.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import build_parser
from tests.conftest import ROOT, write_small_suite

ACTION = ROOT / "action.yml"
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="bash steps")


@dataclass
class CompositeResult:
    """What the caller of the action sees."""

    exit_code: int
    outputs: dict[str, str]
    step_outputs: dict[str, dict[str, str]]
    summary: str
    skipped_uses: list[str]
    logs: list[str] = field(default_factory=list)


def _read_outputs(path: Path) -> dict[str, str]:
    """A GITHUB_OUTPUT file: `name=value` lines and `name<<DELIM ... DELIM` blocks."""
    out: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            j = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1: j])
            i = j + 1
            continue
        name, _, value = line.partition("=")
        out[name] = value
        i += 1
    return out


def _evaluate(text: str, context: dict[str, Any]) -> str:
    def one(m: re.Match[str]) -> str:
        expr = m.group(1)
        if expr == "github.action_path":
            return str(context["action_path"])
        if expr.startswith("inputs."):
            return str(context["inputs"][expr.removeprefix("inputs.")])
        sm = re.fullmatch(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)", expr)
        if sm:
            return context["steps"].get(sm.group(1), {}).get(sm.group(2), "")
        raise AssertionError(f"action.yml uses an expression this runner does not model: "
                             f"{m.group(0)}")
    return _EXPR.sub(one, text)


def run_composite(action_file: Path, inputs: dict[str, str], *, work: Path,
                  path_dirs: list[Path], extra_env: dict[str, str] | None = None
                  ) -> CompositeResult:
    """Run a composite action's steps as a GitHub runner would (module docstring)."""
    action = yaml.safe_load(action_file.read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    declared = action.get("inputs") or {}
    unknown = set(inputs) - set(declared)
    assert not unknown, f"inputs the action does not define: {sorted(unknown)}"
    values = {}
    for name, spec in declared.items():
        if name in inputs:
            values[name] = inputs[name]
        elif spec.get("required"):
            raise AssertionError(f"required input {name!r} missing")
        else:
            values[name] = str(spec.get("default", ""))
    context: dict[str, Any] = {"inputs": values, "action_path": action_file.parent,
                               "steps": {}}
    base_env = {"PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]),
                "HOME": str(work), "GITHUB_ACTIONS": "true", "CI": "true",
                "GITHUB_WORKSPACE": str(work), "RUNNER_TEMP": str(work / "_temp"),
                **(extra_env or {})}
    (work / "_temp").mkdir(exist_ok=True)
    summary_parts: list[str] = []
    skipped: list[str] = []
    logs: list[str] = []
    code = 0
    for i, step in enumerate(action["runs"]["steps"]):
        if "uses" in step:
            skipped.append(step["uses"])
            continue
        assert step.get("shell") == "bash", f"step {i}: composite run steps need a shell"
        script = work / "_temp" / f"step-{i}.sh"
        script.write_text(_evaluate(step["run"], context), encoding="utf-8")
        gh_output = work / "_temp" / f"output-{i}"
        gh_summary = work / "_temp" / f"summary-{i}"
        env = {**base_env,
               **{k: _evaluate(str(v), context) for k, v in (step.get("env") or {}).items()},
               "GITHUB_OUTPUT": str(gh_output), "GITHUB_STEP_SUMMARY": str(gh_summary)}
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              cwd=work, env=env, capture_output=True, text=True, timeout=600)
        logs.append(proc.stdout + proc.stderr)
        if step.get("id"):
            context["steps"][step["id"]] = _read_outputs(gh_output)
        if gh_summary.is_file():
            summary_parts.append(gh_summary.read_text(encoding="utf-8"))
        if proc.returncode != 0:
            code = proc.returncode
            break
    outputs = {name: _evaluate(spec["value"], context)
               for name, spec in (action.get("outputs") or {}).items()}
    return CompositeResult(code, outputs, context["steps"], "".join(summary_parts), skipped,
                           logs)


def _shims(tmp: Path) -> Path:
    """`python` that records `-m pip install` (the action installs itself; here the
    project's venv already has harness) and runs the real interpreter otherwise."""
    shim = tmp / "shim"
    shim.mkdir()
    py = shim / "python"
    py.write_text(f"""#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$@" >> "{tmp}/pip-calls"; exit 0; fi
exec "{sys.executable}" "$@"
""")
    py.chmod(py.stat().st_mode | stat.S_IXUSR)
    return shim


def _fake_harness(shim: Path) -> None:
    """A stand-in `harness` whose run/compare exit with FAKE_RUN / FAKE_COMPARE, writing what
    the real one writes (run.json on stdout, the run folder, a step summary line)."""
    fake = shim / "harness"
    fake.write_text("""#!/usr/bin/env bash
cmd=$1; shift
out=results
while [ $# -gt 0 ]; do case $1 in --out) out=$2; shift;; esac; shift; done
if [ "$cmd" = run ]; then
  mkdir -p "$out/fake-run"; echo '<!DOCTYPE html>' > "$out/fake-run/report.html"
  echo "fake run exit $FAKE_RUN" >> "$GITHUB_STEP_SUMMARY"
  echo '{"run_id": "fake-run", "outcome": "x"}'; exit "$FAKE_RUN"
fi
echo "fake compare exit $FAKE_COMPARE" >> "$GITHUB_STEP_SUMMARY"
echo '{"outcome": "x"}'; exit "$FAKE_COMPARE"
""")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize(("run_code", "compare_code", "want"),
                         [(0, 0, 0), (0, 1, 1), (3, 0, 3), (3, 1, 1), (1, 3, 1), (0, 2, 2),
                          (4, None, 4)])
def test_the_action_plumbs_inputs_outputs_and_the_worse_exit_code(
        tmp_path: Path, run_code: int, compare_code: int | None, want: int) -> None:
    """The action's steps (with a stand-in harness: fast) pass every input, set every
    output and exit with the worse of run and compare (compare skipped after exit 4)."""
    shim = _shims(tmp_path)
    _fake_harness(shim)
    res = run_composite(ACTION, {"suite": "suites/x.yaml", "baseline": "base-run",
                                 "run-args": "--samples 7"},
                        work=tmp_path, path_dirs=[shim],
                        extra_env={"FAKE_RUN": str(run_code),
                                   "FAKE_COMPARE": str(compare_code or 0)})
    assert res.skipped_uses == ["actions/setup-python@v5"]
    assert (tmp_path / "pip-calls").read_text().split()[-1] == str(ROOT)
    assert res.exit_code == want, res.logs
    assert res.outputs == {"run-id": "fake-run", "run-dir": "results/fake-run",
                           "report": "results/fake-run/report.html", "exit-code": str(want)}
    assert f"fake run exit {run_code}" in res.summary
    assert ("fake compare" in res.summary) == (compare_code is not None)


def _outcome_suite(tmp: Path, outcome: str) -> Path:
    """A suite whose sim run holds (25 library probes, patched simulator, max 0.3), breaches
    (a small suite on the vulnerable simulator) or stays inconclusive (the small suite,
    patched: too few probe families to show the rate below its maxima)."""
    sub = tmp / outcome
    sub.mkdir()
    if outcome == "holds":
        suite = sub / "holds.yaml"
        suite.write_text(f"name: holds\nprobes:\n  - {ROOT}/probes/library/dangerous-instructions"
                         ".jsonl\ncontexts:\n  - name: bare\ntemperatures: [0.7]\nsamples: 4\n"
                         "seed: 3\nmax_rate: {overall: 0.3, dangerous-instructions: 0.3}\n")
        return suite
    return write_small_suite(sub, samples=6)


@pytest.mark.slow
@pytest.mark.parametrize(("outcome", "target", "code"),
                         [("holds", "sim:patched", 0), ("breached", "sim", 1),
                          ("inconclusive", "sim:patched", 3)])
def test_the_action_on_the_simulator(tmp_path: Path, outcome: str, target: str,
                                     code: int) -> None:
    """The real harness through the action's steps: outputs, step summary, exit codes."""
    suite = _outcome_suite(tmp_path, outcome)
    shim = _shims(tmp_path)
    res = run_composite(ACTION, {"suite": str(suite), "target": target},
                        work=tmp_path, path_dirs=[shim, Path(sys.executable).parent])
    assert res.exit_code == code, res.logs
    assert res.outputs["exit-code"] == str(code)
    run_dir = tmp_path / res.outputs["run-dir"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["outcome"] == outcome
    assert res.outputs["run-id"] == summary["run_id"] == run_dir.name
    assert (tmp_path / res.outputs["report"]).read_text().startswith("<!DOCTYPE html>")
    assert outcome.upper() in res.summary.upper() and summary["run_id"] in res.summary
    assert (tmp_path / "results" / "junit-run.xml").is_file()


def _action_inputs() -> tuple[set[str], set[str], set[str]]:
    action = yaml.safe_load(ACTION.read_text())
    inputs = action["inputs"]
    return (set(inputs), {k for k, v in inputs.items() if v.get("required")},
            set(action["outputs"]))


def _cli_flags(*path: str) -> set[str]:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = sub.choices[name]
    return {o for a in parser._actions for o in a.option_strings}


_SUBACTIONS = {"watch", "incident", "probes", "sim"}


def test_example_workflows_are_valid_and_use_only_what_the_action_defines() -> None:
    inputs, required, outputs = _action_inputs()
    files = sorted((ROOT / "docs" / "ci").glob("*.yml"))
    assert len(files) >= 2
    used_action = False
    for f in files:
        doc = yaml.safe_load(f.read_text())
        # PyYAML reads the bare key `on` as True (YAML 1.1).
        assert doc.get("on", doc.get(True)), f"{f.name}: no trigger"
        for job_name, job in doc["jobs"].items():
            assert "runs-on" in job, f"{f.name}: job {job_name} has no runs-on"
            ids = [s["id"] for s in job["steps"] if "id" in s]
            for step in job["steps"]:
                assert ("uses" in step) != ("run" in step), f"{f.name}: {step}"
                text = json.dumps(step)
                for sid, _out in re.findall(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([a-z-]+)",
                                           text):
                    assert sid in ids, f"{f.name}: steps.{sid} is not a step id"
                if "uses" in step and step["uses"].endswith("/harness@main"):
                    used_action = True
                    given = set(step.get("with") or {})
                    assert given <= inputs, f"{f.name}: unknown inputs {given - inputs}"
                    assert required <= given, f"{f.name}: missing {required - given}"
                    for out in re.findall(rf"steps\.{step['id']}\.outputs\.([a-z-]+)",
                                          f.read_text()):
                        assert out in outputs, f"{f.name}: the action has no output {out}"
                if "run" in step:
                    for line in re.findall(r"harness [a-z].*(?:\n\s+--.*)*", step["run"]):
                        words = line.split()
                        cmd = words[1:3] if words[1] in _SUBACTIONS else words[1:2]
                        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line))
                        assert flags <= _cli_flags(*cmd), (f.name, cmd,
                                                           flags - _cli_flags(*cmd))
    assert used_action, "no example workflow uses the action"
