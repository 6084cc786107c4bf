"""`harness run SUITE --executor ray`: the shards of one plan as Ray tasks, merged into one run.

The optional extra ``pip install 'harness[ray]'`` brings Ray. The driver (the machine that
runs `harness run`) loads and resolves the suite (flags and its own ``HARNESS_*``
environment), then starts one Ray task per shard (`--shards N`, default: the cluster's
CPUs). Each task runs `run.run_suite` with `--shard I/N` in a temporary folder on whatever
node Ray picks and returns the shard's run folder as bytes, so the nodes need no shared
file system; the driver writes the shard folders under ``OUT/<run-id>.shards/`` and joins
them with `merge.merge_runs`: the same checks as `harness merge` (one plan, no gap or
overlap) and a summary.json equal to the unsharded run's at the same seed.

What each node needs: harness (and the extra) installed, and for `openai:<model>` targets the
API key in the variable `--api-key-env` names, in the worker's environment (Ray's
``runtime_env`` or the node's own environment: the driver never ships a key). `--rpm` and
`--tpm` are split evenly between the shards, which sample at the same time. A shard that
fails stays in ``OUT/<run-id>.shards/`` when it got as far as writing its folder:
`harness run --resume` it there, then `harness merge` the folders.

Ray's usage statistics (which would send data off the machine) are turned off unless the
environment already says otherwise (``RAY_USAGE_STATS_ENABLED``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import errors
from harness.errors import HarnessError, InfrastructureError, UsageError
from harness.merge import MergeOptions, merge_runs
from harness.plan import Shard
from harness.run import RunOptions, RunResult, resolve_suite, run_suite
from harness.settings import Overrides
from harness.store import make_private_dir, new_run_id
from harness.suites import Suite, load_suite

__all__ = ["RayOptions", "run_suite_on_ray"]

INSTALL_HINT = "pip install 'harness[ray]'"


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: `address` of a running cluster (None: `$RAY_ADDRESS`, else a
    local Ray started for this run with `num_cpus`), and the number of shards (None: the
    cluster's CPUs)."""

    shards: int | None = None
    address: str | None = None
    num_cpus: int | None = None


def import_ray() -> Any:
    """The `ray` module, or a UsageError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--executor ray needs Ray, an optional extra: {INSTALL_HINT} "
                         "(or run the shards yourself with --shard I/N and `harness merge`)"
                         ) from None
    return ray


def _shard_task(suite: Suite, options: RunOptions, index: int, count: int) -> dict[str, Any]:
    """Inside a Ray worker: sample shard index/count; the run folder's files, or the error."""
    with tempfile.TemporaryDirectory(prefix="harness-shard-") as tmp:
        opts = replace(options, out_dir=Path(tmp), shard=Shard(index, count), progress=False,
                       run_id=f"shard-{index}-of-{count}")
        try:
            result = run_suite(suite, opts)
        except HarnessError as exc:
            run_dir = Path(tmp) / str(opts.run_id)
            files = ({p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
                     if run_dir.is_dir() else {})
            return {"error": (type(exc).__name__, str(exc), exc.exit_code), "files": files}
        return {"files": {p.name: p.read_bytes() for p in result.run_dir.iterdir()
                          if p.is_file()}}


def _error_of(name: str, message: str) -> HarnessError:
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, HarnessError):
        try:
            return kind(message)
        except TypeError:
            pass
    return InfrastructureError(message)


def _check(options: RunOptions, ray_options: RayOptions) -> None:
    if not isinstance(options.target, str):
        raise UsageError("--executor ray needs a target spec (sim, openai:<model>), not a "
                         "Target object: each Ray task builds its own target")
    if options.shard is not None:
        raise UsageError("--executor ray makes the shards itself; drop --shard")
    if options.sequential:
        raise UsageError("--sequential cannot run as shards (its stopping rule needs every "
                         "group's counts); drop --executor ray or --sequential")
    if options.calibration is not None:
        raise UsageError("--calibration is not applied by --executor ray; run without it, "
                         "then `harness rescore RUN_DIR --calibration FILE`")
    if ray_options.shards is not None and ray_options.shards < 1:
        raise UsageError(f"--shards must be at least 1, got {ray_options.shards}")


def run_suite_on_ray(suite: Suite | str | Path, options: RunOptions | None = None,
                     ray_options: RayOptions | None = None) -> RunResult:
    """Sample `suite` as shards on Ray and merge them into `options.out_dir/<run-id>/`.

    Blocking. The result is that of `merge.merge_runs` (summary, outcome, exit code).
    Raises UsageError when Ray is not installed or the options do not fit, and the error a
    shard raised (e.g. InfrastructureError, exit 4) when one failed.
    """
    options = options or RunOptions()
    ray_options = ray_options or RayOptions()
    _check(options, ray_options)
    ray = import_ray()
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    # Resolved here, with the driver's flags and environment: the workers' may differ.
    suite = resolve_suite(suite, options)
    run_id = options.run_id or new_run_id(suite.name)
    if Path(run_id).name != run_id or run_id in (".", ".."):
        raise UsageError(f"--run-id {run_id!r} must be a plain folder name")
    for taken in (Path(options.out_dir) / run_id, Path(options.out_dir) / f"{run_id}.shards"):
        if taken.exists():  # before sampling, not after
            raise UsageError(f"{taken} already exists; choose another --run-id or --out")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started_here = not ray.is_initialized()
    if started_here:
        address = ray_options.address or os.environ.get("RAY_ADDRESS") or "local"
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 num_cpus=ray_options.num_cpus if address == "local" else None)
    try:
        count = ray_options.shards or max(1, int(ray.cluster_resources().get("CPU", 1)))
        task_options = replace(
            options, overrides=Overrides(), use_env=False, run_id=None, progress=False,
            rpm=options.rpm / count if options.rpm else None,
            tpm=options.tpm / count if options.tpm else None)
        task = ray.remote(num_cpus=1, max_retries=0)(_shard_task)
        refs = [task.remote(suite, task_options, i, count) for i in range(1, count + 1)]
        outputs = ray.get(refs)
    finally:
        if started_here:
            ray.shutdown()
    dirs = _write_shards(outputs, Path(options.out_dir) / f"{run_id}.shards", count)
    return merge_runs(dirs, MergeOptions(out_dir=Path(options.out_dir), run_id=run_id))


def _write_shards(outputs: list[dict[str, Any]], shards_dir: Path, count: int) -> list[Path]:
    """Write each task's shard folder; raise the first shard's error, if any failed."""
    make_private_dir(shards_dir.parent)
    if shards_dir.exists():
        raise UsageError(f"{shards_dir} already exists; choose another --run-id or --out")
    make_private_dir(shards_dir)
    dirs: list[Path] = []
    failures: list[tuple[int, tuple[str, str, int]]] = []
    for i, out in enumerate(outputs, start=1):
        folder = shards_dir / f"shard-{i}-of-{count}"
        if out["files"]:
            make_private_dir(folder)
            for name, data in out["files"].items():
                (folder / name).write_bytes(data)
            dirs.append(folder)
        if "error" in out:
            failures.append((i, out["error"]))
    if failures:
        i, (name, message, _) = failures[0]
        raise _error_of(name, f"shard {i}/{count} failed: {message}\n({len(failures)} of "
                        f"{count} shards failed; the others are in {shards_dir}: resume the "
                        "failed ones with `harness run --resume`, then `harness merge`)")
    return dirs
