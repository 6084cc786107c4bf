"""`harness plan` end to end through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main


def test_plan_human(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--max-rate", "1%", "--expected-rate", "0.0025"]) == 0
    out = capsys.readouterr().out
    assert "773 samples" in out and "at most 3 harmful" in out and "299 samples" in out


def test_plan_json_clustered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--max-rate", "0.01", "--icc", "0.2", "--samples-per-cluster", "10",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n"] == 299 and d["clusters"] == 84 and d["design_effect"] == pytest.approx(2.8)


@pytest.mark.parametrize("argv", [["--max-rate", "2"], ["--max-rate", "0.01", "--icc", "0.2"],
                                  ["--max-rate", "0.01", "--expected-rate", "0.02"]])
def test_plan_bad_input_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", *argv]) == 2
    assert "error" in capsys.readouterr().err


def test_plan_suite_counts_the_requests_and_tokens_a_run_sends(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The estimate against what a real run over HTTP sends: the simulator server counts
    requests, and reports prompt tokens with the same 4-characters rule, so both match."""
    from harness.run import RunOptions, run_suite
    from harness.sim.server import ServerConfig
    from tests.targets.test_openai_batch import ThreadedSim, small_suite

    suite = small_suite(tmp_path, samples=5)
    assert main(["plan", str(suite), "--json", "--price-per-1k-in", "1",
                 "--price-per-1k-out", "2"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["cells"], d["samples"], d["n_per_request"]) == (4, 20, 50)
    server = ThreadedSim(ServerConfig())
    try:
        result = run_suite(suite, RunOptions(target="openai:sim", base_url=server.base_url,
                                             out_dir=tmp_path / "out", progress=False))
        assert d["requests"] == server.chat_requests == 5  # first cell split 2 + 3
    finally:
        server.stop()
    assert d["tokens_in_estimated"] == result.summary["tokens"]["in"]
    assert d["max_tokens_out"] == 20 * 256 >= result.summary["tokens"]["out"]
    assert d["cost"]["max_total"] == pytest.approx(d["tokens_in_estimated"] / 1000 + 10.24)
    assert main(["plan", str(suite), "--no-n"]) == 0
    out = capsys.readouterr().out
    assert "20 samples in 20 requests (one sample a request)" in out


def test_plan_needs_a_rate_or_a_suite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan"]) == 2
    assert "give --max-rate RATE" in capsys.readouterr().err
