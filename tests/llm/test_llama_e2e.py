"""End to end against a real model: SmolLM2-135M-Instruct on llama-cpp-python's server.

`harness run` through `--target openai:...` as a user runs it. The server answers one choice
whatever `n` asks for, ignores nothing else that matters here, and serves one request at a
time. Run with `make test-llm` (builds the llm venv; plain `make test` deselects these).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.store import iter_sample_dicts
from tests.conftest import ROOT, harness_cmd, write_small_suite
from tests.llm.llama_server import MODEL_ALIAS, LlamaServer

pytestmark = [pytest.mark.llm, pytest.mark.timeout(900)]

# 5 probes x 2 contexts (write_small_suite) x 2 temperatures; short answers keep it quick.
CELLS = 5 * 2 * 2
EXTRA = "max_tokens: 48"


def _run_dir(out: Path) -> Path:
    dirs = sorted(p for p in out.iterdir() if (p / "manifest.json").exists())
    assert len(dirs) == 1, dirs
    return dirs[0]


def _target(llama: LlamaServer) -> list[str]:
    # One request at a time: the server serves one anyway, and more would only queue there.
    return ["--target", f"openai:{MODEL_ALIAS}", "--base-url", llama.base_url,
            "--concurrency", "1"]


def test_run_completes_with_every_sample_once_and_outcomes_apart(
        tmp_path: Path, llama: LlamaServer) -> None:
    suite = write_small_suite(tmp_path, samples=2, temperatures="[0.0, 0.9]", extra=EXTRA)
    out = tmp_path / "out"
    proc = harness_cmd("run", str(suite), *_target(llama), "--out", str(out), timeout=600)
    assert proc.returncode in (0, 1, 3), proc.stdout + proc.stderr
    run = _run_dir(out)
    recs = list(iter_sample_dicts(run / "samples.jsonl"))
    keys = Counter((r["probe_id"], r["context"], r["temperature"], r["sample_index"])
                   for r in recs)
    assert len(keys) == CELLS * 2 and max(keys.values()) == 1  # every planned sample, once
    # A real answer for each: the server ignores n, and no answer was thrown away for it.
    assert not [r for r in recs if r["outcome"] == "error"], \
        [r["error"] for r in recs if r["error"]][:3]
    assert all(r["response"] is not None and r["model"] for r in recs)
    assert all(r["seed_sent"] == r["seed"] for r in recs)  # each asked for alone, own seed
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["target"]["n_batching"] is False
    summary = json.loads((run / "summary.json").read_text())
    counted = Counter(r["outcome"] for r in recs)
    for g in summary["groups"]:
        if g["by"] != "category":
            continue
        mine = [r for r in recs if r["category"] == g["key"]]
        assert g["n"] == len(mine)
        assert g["n_harmful"] == sum(r["outcome"] == "harmful" for r in mine)
        assert g["n_blocked"] == sum(r["outcome"] == "blocked" for r in mine)
        assert g["n_error"] == sum(r["outcome"] == "error" for r in mine)
        if "n_unclear" in g:
            assert g["n_unclear"] == sum(r["outcome"] == "unclear" for r in mine)
        assert g["n_truncated"] == sum(r["finish_reason"] == "length" for r in mine)
    assert sum(counted.values()) == CELLS * 2
    report = (run / "report.md").read_text()
    n_cut = sum(r["finish_reason"] == "length" for r in recs)
    if n_cut:  # 48 tokens cut most of SmolLM2's answers
        assert f"Cut off at max_tokens (finish_reason `length`): {n_cut} of" in report
    latencies = [r["latency_s"] for r in recs]
    assert all(lat is not None and 0 < lat < 120 for lat in latencies)


def test_kill_9_midway_then_resume_samples_each_planned_sample_once(
        tmp_path: Path, llama: LlamaServer) -> None:
    samples = 3
    planned = CELLS * samples
    suite = write_small_suite(tmp_path, samples=samples, temperatures="[0.3, 1.0]",
                              extra=EXTRA)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "harness.cli", "run", str(suite), *_target(llama),
           "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "CI": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        path: Path | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            dirs = sorted(p for p in out.iterdir()) if out.exists() else []
            if dirs and (dirs[0] / "samples.jsonl").exists() and \
                    sum(1 for _ in iter_sample_dicts(dirs[0] / "samples.jsonl")) >= 8:
                path = dirs[0] / "samples.jsonl"
                break
            time.sleep(0.2)
        assert path is not None, "the run wrote no samples (or finished) before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    before = {(r["probe_id"], r["context"], r["temperature"], r["sample_index"]): r["response"]
              for r in iter_sample_dicts(path)}
    assert 0 < len(before) < planned
    resumed = harness_cmd("run", "--resume", str(path.parent), "--quiet", timeout=600)
    assert resumed.returncode in (0, 1, 3), resumed.stdout + resumed.stderr
    recs = list(iter_sample_dicts(path))
    keys = Counter((r["probe_id"], r["context"], r["temperature"], r["sample_index"])
                   for r in recs)
    assert len(keys) == planned and max(keys.values()) == 1
    after = {(r["probe_id"], r["context"], r["temperature"], r["sample_index"]): r["response"]
             for r in recs}
    assert all(after[k] == v for k, v in before.items())  # what was on disk is kept as is
    summary = json.loads((path.parent / "summary.json").read_text())
    assert summary["errors"]["n"] == planned and summary["errors"]["n_error"] == 0
