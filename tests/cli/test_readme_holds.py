"""The README's "From a plan to HOLDS" example, run as written: the plan's sample count is
what the suite samples, the safe model holds (exit 0), the leaky one is inconclusive (3)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[tuple[list[str], str]]:
    """(argv, comment) of each line of the README block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## From a plan to HOLDS", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    out = []
    for raw in block.splitlines():
        cmd, _, comment = raw.partition("#")
        if cmd.strip():
            argv = shlex.split(cmd)
            assert argv[0] == "harness"
            out.append((argv[1:], comment))
    return out


def test_the_plan_asks_for_what_the_suite_samples(capsys: pytest.CaptureFixture[str]) -> None:
    (plan, note), *_ = _commands()
    assert main(plan) == 0
    needed = int(re.search(r"(\d+) samples", capsys.readouterr().out)[1])  # type: ignore[index]
    assert f"{needed} clean samples" in note
    suite = yaml.safe_load((ROOT / "suites" / "release.yaml").read_text(encoding="utf-8"))
    n_probes = sum(1 for _ in (ROOT / "probes/library/dangerous-instructions.jsonl").open())
    assert n_probes * suite["samples"] * len(suite["temperatures"]) >= needed


@pytest.mark.parametrize(("index", "code", "outcome"), [
    (1, 0, "HOLDS"), pytest.param(2, 3, "INCONCLUSIVE", marks=pytest.mark.slow)])
def test_the_readme_release_runs_end_as_it_says(
        index: int, code: int, outcome: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("suites", "probes"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    argv, note = _commands()[index]
    assert outcome in note
    assert main([*argv, "--out", str(tmp_path / "results")]) == code
    assert f"outcome: {outcome}" in capsys.readouterr().out
