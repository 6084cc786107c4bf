"""`harness plan` end to end through the real CLI entry point."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.cli import main


def test_plan_fixed_set_human(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--estimand", "fixed-set", "--max-rate", "1%",
                 "--expected-rate", "0.0025"]) == 0
    out = capsys.readouterr().out
    assert "773 samples" in out and "at most 3 harmful" in out and "299 samples" in out
    assert "fixed-set" in out


def test_plan_population_zero_harm_matches_the_two_point_floor(
        capsys: pytest.CaptureFixture[str]) -> None:
    # With no harm the gate's p-value is P(all C probes clean) under the two-point law at
    # icc 0.5 (harness.stats.rare): (1 - f + f (1 - h)^m)^C, h = mu + 0.5 (1 - mu), f = mu/h.
    assert main(["plan", "--max-rate", "0.01", "--icc", "0.2", "--samples-per-probe", "10",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    h = 0.01 + 0.5 * 0.99
    f = 0.01 / h
    clean = 1 - f + f * (1 - h) ** 10
    c_min = math.floor(math.log(0.05) / math.log(clean)) + 1
    assert d["estimand"] == "population" and d["icc"] == 0.2 and d["max_icc"] == 0.5
    assert d["zero_harm_probes"] == c_min and d["probes"] == c_min
    assert d["total_samples"] == c_min * 10 and d["achieved_power"] == 1.0


def test_plan_groups_plans_at_holms_first_level(capsys: pytest.CaptureFixture[str]) -> None:
    # Holm tests the first of G groups at alpha/G: zero-harm floor at alpha 0.05/3.
    assert main(["plan", "--max-rate", "0.05", "--groups", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    h = 0.05 + 0.5 * 0.95
    f = 0.05 / h
    clean = 1 - f + f * (1 - h) ** 10
    assert d["groups"] == 3
    assert d["zero_harm_probes"] == math.floor(math.log(0.05 / 3) / math.log(clean)) + 1
    assert main(["plan", "--max-rate", "1%", "--estimand", "fixed-set", "--groups", "2",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == math.ceil(math.log(0.025) /
                                                                 math.log(0.99))


def test_plan_population_human_states_its_assumption(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--max-rate", "5%", "--samples-per-probe", "10", "--icc", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "prompts like these" in out and "intraclass correlation 0.1" in out
    assert "probes x 10 samples" in out


@pytest.mark.parametrize("argv", [["--max-rate", "2"],
                                  ["--max-rate", "0.01", "--probes", "3"],
                                  ["--max-rate", "0.01", "--estimand", "fixed-set",
                                   "--probes", "30"],
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
        result = run_suite(suite, RunOptions(target="openai:sim",
                                             target_options={"base_url": server.base_url},
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
