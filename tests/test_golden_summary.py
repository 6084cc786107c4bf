"""Golden files: summary.json of the demo and nightly suites at their fixed seeds.

Pins the summary contract byte for byte while the middle of the code is re-layered. Only the
wall-clock fields (`started`, `finished`) are replaced before comparing; everything else,
including key order and float formatting, must match exactly.

A change that alters these numbers on purpose updates the golden files in the same commit and
says why:  .venv/bin/python -m tests.test_golden_summary --update
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from harness.run import RunOptions, run_suite
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "fixtures" / "golden"
SUITES = {"demo": "sim", "nightly": "sim:patched"}
_CLOCK = re.compile(r'^(  "(?:started|finished)": )"[^"]*"', re.MULTILINE)


def summary_text(suite: str, out_dir: Path) -> str:
    """summary.json of `suite` against its target, wall-clock fields replaced."""
    result = run_suite(ROOT / "suites" / f"{suite}.yaml",
                       RunOptions(target=SUITES[suite], out_dir=out_dir, run_id=f"golden-{suite}",
                                  progress=False, use_env=False))
    text = (result.run_dir / "summary.json").read_text(encoding="utf-8")
    return _CLOCK.sub(r'\1"<clock>"', text)


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_summary_json_matches_golden_file(suite: str, tmp_path: Path) -> None:
    got = summary_text(suite, tmp_path)
    assert got.count('"<clock>"') == 2, "started/finished not found at the top level"
    want = (GOLDEN / f"{suite}.summary.json").read_text(encoding="utf-8")
    assert got == want, (f"summary.json of suites/{suite}.yaml changed; if on purpose, run "
                         "`.venv/bin/python -m tests.test_golden_summary --update` and say why "
                         "in the commit")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python -m tests.test_golden_summary --update")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(SUITES):
            (GOLDEN / f"{name}.summary.json").write_text(summary_text(name, Path(tmp)),
                                                         encoding="utf-8")
            print(f"wrote {GOLDEN / f'{name}.summary.json'}")
