"""`harness run --executor ray` (harness.ray_executor).

The tests marked `ray` start a local Ray instance (`ray.init(address="local", num_cpus=2)`,
on ports the OS picks) and run in `make test-ray`, which installs the extra; without Ray
they are skipped saying so. The others run in `make test`, with or without Ray.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import InfrastructureError, UsageError
from harness.ray_executor import RayOptions, run_suite_on_ray
from harness.run import RunOptions, run_suite
from harness.settings import Overrides
from harness.store import MANIFEST, SAMPLES
from tests.conftest import ROOT, free_port

DEMO = ROOT / "suites" / "demo.yaml"
_CLOCK = re.compile(r'^(  "(?:started|finished)": )"[^"]*"', re.MULTILINE)
NO_RAY = "Ray is not installed: `make test-ray` installs the extra (pip install 'harness[ray]')"


def _summary_text(run_dir: Path) -> str:
    return _CLOCK.sub(r'\1"<clock>"', (run_dir / "summary.json").read_text(encoding="utf-8"))


def test_without_ray_the_executor_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code = main(["run", str(DEMO), "--executor", "ray", "--shards", "2", "--quiet",
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'harness[ray]'" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize(("options", "ray_options", "words"), [
    (RunOptions(sequential=True), RayOptions(), "--sequential cannot run as shards"),
    (RunOptions(calibration=Path("c.json")), RayOptions(), "harness rescore"),
    (RunOptions(), RayOptions(shards=0), "--shards must be at least 1"),
])
def test_options_that_do_not_fit_are_usage_errors(options: RunOptions, ray_options: RayOptions,
                                                  words: str) -> None:
    with pytest.raises(UsageError, match=re.escape(words)):
        run_suite_on_ray(DEMO, options, ray_options)


def test_shards_flag_needs_the_ray_executor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(DEMO), "--shards", "2", "--quiet"]) == 2
    assert "--shards and --ray-address apply with --executor ray" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A local Ray instance for this module; yields its address for other processes."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    context = ray.init(address="local", num_cpus=2, include_dashboard=False,
                       log_to_driver=False, object_store_memory=200 * 1024 * 1024)
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()


def _options(out: Path, run_id: str, **kw: Any) -> RunOptions:
    return RunOptions(out_dir=out, run_id=run_id, progress=False, use_env=False,
                      overrides=Overrides(samples=3, seed=7), **kw)


@pytest.mark.ray
def test_ray_shards_merge_to_the_unsharded_summary(ray_cluster: str, tmp_path: Path) -> None:
    whole = run_suite(DEMO, _options(tmp_path / "whole", "R"))
    result = run_suite_on_ray(DEMO, _options(tmp_path / "ray", "R"), RayOptions(shards=3))
    assert _summary_text(result.run_dir) == _summary_text(whole.run_dir)
    assert result.exit_code == whole.exit_code
    manifest = json.loads((result.run_dir / MANIFEST).read_text())
    assert [m["shard"]["index"] for m in manifest["merged_from"]] == [1, 2, 3]
    shards = sorted((tmp_path / "ray" / "R.shards").iterdir())
    assert [s.name for s in shards] == [f"shard-{i}-of-3" for i in (1, 2, 3)]
    per_shard = [len((s / SAMPLES).read_text().splitlines()) for s in shards]
    assert all(per_shard) and sum(per_shard) == \
        len((whole.run_dir / SAMPLES).read_text().splitlines())


@pytest.mark.ray
def test_cli_runs_on_a_running_cluster_by_address(ray_cluster: str, tmp_path: Path) -> None:
    env = {**os.environ, "CI": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    got = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(DEMO), "--target", "sim:patched",
         "--executor", "ray", "--shards", "2", "--ray-address", ray_cluster, "--samples", "2",
         "--out", str(tmp_path), "--run-id", "cli", "--json", "--quiet"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert got.returncode in (0, 1, 3), got.stderr
    summary = json.loads(got.stdout)
    assert summary["run_id"] == "cli" and summary["overall"]["n"] > 0
    assert (tmp_path / "cli.shards" / "shard-2-of-2" / MANIFEST).is_file()


@pytest.mark.ray
def test_a_failing_shard_raises_its_error_and_keeps_its_folder(ray_cluster: str,
                                                               tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    options = _options(tmp_path, "dead", target="openai:sim", target_options={"base_url": dead})
    with pytest.raises(InfrastructureError, match=r"shard \d/2 failed: .*cannot reach"):
        run_suite_on_ray(DEMO, options, RayOptions(shards=2))
    kept = sorted((tmp_path / "dead.shards").iterdir())
    assert kept and all((k / MANIFEST).is_file() for k in kept)
