from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.settings import Overrides, apply_overrides, env_overrides, parse_temperatures
from harness.suites import load_suite
from tests.test_suites import make_suite


def test_settings_precedence(tmp_path: Path) -> None:
    s = load_suite(make_suite(tmp_path, "name: t\nprobes: [p.jsonl]\nsamples: 4\nseed: 1\n"))
    env = env_overrides({"HARNESS_SAMPLES": "7", "HARNESS_SEED": "2"})
    flags = Overrides(samples=9)
    resolved = apply_overrides(s, env, flags)
    assert resolved.samples == 9  # flag beats environment
    assert resolved.seed == 2  # environment beats suite
    with pytest.raises(UsageError, match="HARNESS_SAMPLES"):
        env_overrides({"HARNESS_SAMPLES": "many"})


def test_parse_temperatures() -> None:
    assert parse_temperatures("0,0.7,1") == (0.0, 0.7, 1.0)
    with pytest.raises(UsageError):
        parse_temperatures("hot")
    with pytest.raises(UsageError):
        parse_temperatures("3")


def test_environment_reads_every_variable_at_call_time() -> None:
    from harness.settings import environment, ignored_environment

    env = {"HARNESS_TARGET": "sim:patched", "HARNESS_BASE_URL": "", "USER": "ana",
           "HARNESS_JUDGE_MODEL": "j", "HARNESS_DEBUG": "1", "CI": "true",
           "GITHUB_STEP_SUMMARY": "/tmp/s.md", "HARNESS_SAMPLES": "3", "HARNESS_SEED": ""}
    got = environment(env)
    assert got.target == "sim:patched" and got.base_url is None  # empty means unset
    assert got.responder == "ana" and got.judge_model == "j" and got.debug and got.ci
    assert got.step_summary == "/tmp/s.md" and got.moderation_model is None
    assert environment({**env, "HARNESS_RESPONDER": "bo"}).responder == "bo"
    assert environment({}).debug is False and environment({}).responder is None
    assert ignored_environment(env) == {"HARNESS_SAMPLES": "3"}
