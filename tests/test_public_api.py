"""The public surface re-exported by `harness` resolves to the defining modules' objects."""

from __future__ import annotations

import subprocess
import sys

import harness
from harness.run import run_suite
from harness.summary import RunSummary
from tests.conftest import ROOT


def test_every_public_name_resolves() -> None:
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name
    assert harness.run_suite is run_suite and harness.RunSummary is RunSummary


def test_import_harness_stays_light() -> None:
    code = ("import sys, harness; heavy = [m for m in ('pandas', 'openai', 'scipy', 'harness.run') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.strip()
    assert out == "[]"
