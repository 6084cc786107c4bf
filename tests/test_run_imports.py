"""What a run imports before its first request, and the finish step's imports warmed during
sampling (harness.run._finish; issue 16, docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.run import FINISH_MODULES
from tests.conftest import ROOT, write_small_suite

HEAVY = ("scipy", "matplotlib", "jinja2", "pandas", "harness.analysis", "harness.gating",
         "harness.stats", "harness.html_report", "harness.calibration")


def _python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_nothing_of_the_finish_step_is_imported_before_sampling() -> None:
    """The CLI with every subcommand, the run orchestration, the engine and both targets a
    benchmark run uses: none of them imports scipy, matplotlib or the analysis."""
    loaded = json.loads(_python(
        "import json, sys\n"
        "import harness.cli, harness.run, harness.engine, harness.targets.openai_target\n"
        "import harness.targets.sim_target\n"
        "harness.cli.build_parser()\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"))
    assert loaded == []


def test_the_warm_up_thread_imports_the_finish_step_modules() -> None:
    loaded = json.loads(_python(
        "import json, sys\n"
        "from harness.run import warm_finish_imports\n"
        "warm_finish_imports().join(120)\n"
        f"print(json.dumps([m for m in {list(FINISH_MODULES)!r} if m in sys.modules]))"))
    assert loaded == list(FINISH_MODULES)
    assert {"harness.analysis", "harness.html_report", "matplotlib.figure"} <= set(loaded)


def test_a_run_finishes_after_a_slow_or_failing_warm_up(tmp_path: Path) -> None:
    """The run waits for the warm-up thread before finishing (finishing while it still
    imported matplotlib once got a half-initialised matplotlib.figure from Python's import
    deadlock resolution), and the finish step imports what it needs itself when the
    thread's imports failed."""
    suite = write_small_suite(tmp_path, samples=2)
    out = json.loads(_python(
        "import json, threading, time\n"
        "import harness.run as run\n"
        "from harness.run import _finish\n"
        "real_import, real_finish = _finish._import, run.finish_run\n"
        "def slow(name):\n"
        "    time.sleep(0.4)\n"
        "    if name == 'harness.html_report':\n"
        "        raise ImportError('warm-up failed')\n"
        "    return real_import(name)\n"
        "warming = []\n"
        "def finish(*args, **kwargs):\n"
        "    warming.extend(t.name for t in threading.enumerate()\n"
        "                   if t.name == 'harness-warm-imports')\n"
        "    return real_finish(*args, **kwargs)\n"
        "_finish._import, run.finish_run = slow, finish\n"
        f"r = run.run_suite({str(suite)!r}, run.RunOptions(target='sim:vulnerable', "
        f"out_dir={str(tmp_path / 'r')!r}, progress=False))\n"
        "print(json.dumps({'outcome': r.outcome, 'warming': warming, 'files': sorted(p.name "
        "for p in r.run_dir.iterdir())}))"))
    assert out["warming"] == []
    assert out["outcome"] == "breached"
    assert {"summary.json", "report.md", "report.html", "manifest.json"} <= set(out["files"])
