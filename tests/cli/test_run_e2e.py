"""End to end through the CLI, the real `openai` client and `harness sim serve` over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from harness.store import iter_sample_dicts
from tests.conftest import ROOT, SimServer, free_port, harness_cmd, write_small_suite


def _run_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if (p / "manifest.json").exists())


def test_openai_target_against_sim_server(tmp_path: Path, sim_server: SimServer) -> None:
    suite = write_small_suite(tmp_path, samples=3)
    out = tmp_path / "out"
    secret = "sk-test-DO-NOT-STORE-1234567890"
    proc = harness_cmd("run", str(suite), "--target", "openai:sim-vulnerable", "--base-url",
                       sim_server.base_url, "--api-key-env", "E2E_KEY", "--out", str(out),
                       env={"E2E_KEY": secret})
    assert proc.returncode in (0, 1, 3), proc.stderr
    assert "outcome:" in proc.stdout
    run_dir = _run_dirs(out)[0]
    recs = list(iter_sample_dicts(run_dir / "samples.jsonl"))
    assert len(recs) == 5 * 2 * 2 * 3
    assert all(r["model"] and r["system_fingerprint"] for r in recs)
    assert all(r["outcome"] in ("harmful", "safe", "blocked") for r in recs)
    for f in run_dir.iterdir():  # the API key never reaches disk
        assert secret not in f.read_text(errors="replace")
    assert secret not in proc.stdout + proc.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["target"]["spec"] == "openai:sim-vulnerable"


def test_unreachable_endpoint_is_exit_4_with_one_message(tmp_path: Path) -> None:
    suite = write_small_suite(tmp_path, samples=1)
    url = f"http://127.0.0.1:{free_port()}/v1"
    proc = harness_cmd("run", str(suite), "--target", "openai:m", "--base-url", url,
                       "--out", str(tmp_path / "out"), timeout=180)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "127.0.0.1" in proc.stderr and "connection refused" in proc.stderr
    assert proc.stderr.count("cannot reach") == 1


def test_wrong_key_is_exit_4_and_names_the_variable(tmp_path: Path) -> None:
    server = SimServer("--api-key", "right-key")
    try:
        suite = write_small_suite(tmp_path, samples=1)
        proc = harness_cmd("run", str(suite), "--target", "openai:m", "--base-url",
                           server.base_url, "--api-key-env", "WRONG_KEY_VAR",
                           "--out", str(tmp_path / "out"), env={"WRONG_KEY_VAR": "nope"})
    finally:
        server.stop()
    assert proc.returncode == 4, proc.stderr
    assert "WRONG_KEY_VAR" in proc.stderr and "Traceback" not in proc.stderr
    assert "nope" not in proc.stderr


def test_kill_9_midway_then_resume_counts_every_sample_once(tmp_path: Path) -> None:
    server = SimServer("--latency-ms", "100")
    try:
        suite = write_small_suite(tmp_path, samples=60)
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "harness.cli", "run", str(suite), "--target",
               "openai:sim-vulnerable", "--base-url", server.base_url, "--out", str(out),
               "--concurrency", "2", "--quiet"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "CI": "1"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Wait until some (not all) samples are on disk, then kill -9.
        deadline = time.monotonic() + 60
        samples = None
        while time.monotonic() < deadline:
            dirs = _run_dirs(out) if out.exists() else []
            if dirs and (dirs[0] / "samples.jsonl").exists() and \
                    (dirs[0] / "samples.jsonl").stat().st_size > 0:
                samples = dirs[0] / "samples.jsonl"
                break
            time.sleep(0.05)
        assert samples is not None, "the run wrote no samples"
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        before = sum(1 for _ in iter_sample_dicts(samples))
        planned = 5 * 2 * 2 * 60
        assert 0 < before < planned
        resumed = harness_cmd("run", "--resume", str(samples.parent), "--quiet")
        assert resumed.returncode in (0, 1, 3), resumed.stderr
    finally:
        server.stop()
    keys = Counter((r["probe_id"], r["context"], r["temperature"], r["sample_index"])
                   for r in iter_sample_dicts(samples))
    assert len(keys) == planned and max(keys.values()) == 1
    summary = json.loads((samples.parent / "summary.json").read_text())
    assert summary["errors"]["n"] == planned


def test_validate_reports_located_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "category": "nope", "prompt": "p", "expect": {}}\n{oops\n')
    proc = harness_cmd("validate", str(bad))
    assert proc.returncode == 2
    assert f"{bad}:1: category:" in proc.stderr and f"{bad}:2: json:" in proc.stderr
    assert "Traceback" not in proc.stderr
    good = harness_cmd("validate", str(ROOT / "suites" / "demo.yaml"))
    assert good.returncode == 0, good.stderr


def test_bad_flags_are_usage_errors(tmp_path: Path) -> None:
    suite = write_small_suite(tmp_path, samples=1)
    for args in (["--temperatures", "hot"], ["--confidence", "2"], ["--target", "simm"],
                 ["--samples", "0"]):
        proc = harness_cmd("run", str(suite), "--out", str(tmp_path / "o"), *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    proc = harness_cmd("run", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr


def test_endpoint_without_n_gets_one_sample_requests(tmp_path: Path) -> None:
    server = SimServer("--no-n")
    try:
        suite = write_small_suite(tmp_path, samples=6)
        out = tmp_path / "out"
        proc = harness_cmd("run", str(suite), "--target", "openai:sim-vulnerable",
                           "--base-url", server.base_url, "--out", str(out), "--quiet")
    finally:
        server.stop()
    assert proc.returncode in (0, 1, 3), proc.stderr
    run_dir = _run_dirs(out)[0]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["target"]["n_batching"] is False
    keys = Counter((r["probe_id"], r["context"], r["temperature"], r["sample_index"])
                   for r in iter_sample_dicts(run_dir / "samples.jsonl"))
    assert len(keys) == 5 * 2 * 2 * 6 and max(keys.values()) == 1


def test_ctrl_c_keeps_what_was_sampled_and_resume_finishes(tmp_path: Path) -> None:
    server = SimServer("--latency-ms", "100")
    try:
        suite = write_small_suite(tmp_path, samples=60)
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "run", str(suite), "--target",
             "openai:sim-vulnerable", "--base-url", server.base_url, "--out", str(out),
             "--concurrency", "2", "--quiet"], cwd=ROOT, env={**os.environ, "CI": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            dirs = _run_dirs(out) if out.exists() else []
            if dirs and (dirs[0] / "samples.jsonl").exists() and \
                    (dirs[0] / "samples.jsonl").stat().st_size > 0:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        run_dir = _run_dirs(out)[0]
        before = sum(1 for _ in iter_sample_dicts(run_dir / "samples.jsonl"))
        assert 0 < before < 5 * 2 * 2 * 60
        resumed = harness_cmd("run", "--resume", str(run_dir), "--quiet")
        assert resumed.returncode in (0, 1, 3), resumed.stderr
    finally:
        server.stop()
    keys = Counter((r["probe_id"], r["context"], r["temperature"], r["sample_index"])
                   for r in iter_sample_dicts(run_dir / "samples.jsonl"))
    assert len(keys) == 5 * 2 * 2 * 60 and max(keys.values()) == 1


def test_server_that_ignores_n_scores_every_sample_with_the_seed_sent(tmp_path: Path) -> None:
    # llama.cpp's and Ollama's servers answer one choice whatever n asks for.
    server = SimServer("--ignore-n")
    try:
        suite = write_small_suite(tmp_path, samples=4)
        out = tmp_path / "out"
        proc = harness_cmd("run", str(suite), "--target", "openai:sim-vulnerable",
                           "--base-url", server.base_url, "--out", str(out))
    finally:
        server.stop()
    assert proc.returncode in (0, 1, 3), proc.stderr
    run_dir = _run_dirs(out)[0]
    recs = list(iter_sample_dicts(run_dir / "samples.jsonl"))
    assert len(recs) == 5 * 2 * 2 * 4
    assert not [r for r in recs if r["outcome"] == "error"]
    # every sample was asked for alone, so the seed sent is the sample's own
    assert all(r["seed_sent"] == r["seed"] for r in recs)
    # No server timings here: the latency is the answering attempt's, recorded twice.
    assert all(r["attempt_s"] is not None and r["attempt_s"] == r["latency_s"] for r in recs)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["target"]["n_batching"] is False
