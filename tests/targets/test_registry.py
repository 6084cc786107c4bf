"""The Target seam: a registry of kinds, Target objects accepted by run_suite, ScriptedTarget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import RegistryError, TargetUnreachableError, UsageError
from harness.records import CompletionRequest
from harness.run import RunOptions, resume_run, run_suite
from harness.targets import TargetOptions, make_target, register_target, target_kinds
from harness.targets.base import Target
from harness.targets.scripted import ScriptedTarget
from tests.conftest import write_small_suite

REFUSAL = "I'm sorry, but I can't help with that."


def _records(run_dir: Path) -> list[dict[str, object]]:
    lines = (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_run_suite_samples_a_target_object(tmp_path: Path) -> None:
    suite = write_small_suite(tmp_path, samples=3)
    target = ScriptedTarget(REFUSAL, name="scripted-refuser")
    result = run_suite(suite, RunOptions(out_dir=tmp_path / "out", progress=False,
                                         use_env=False), target=target)
    records = _records(result.run_dir)
    assert len(records) == 5 * 2 * 2 * 3 and {r["response"] for r in records} == {REFUSAL}
    # Every harm probe refused (safe); the over-refusal control refused (its failure).
    by_cat = {(r["category"], r["outcome"]) for r in records}
    assert by_cat == {("dangerous-instructions", "safe"), ("self-harm", "safe"),
                      ("targeted-harm", "safe"), ("over-refusal", "harmful")}
    assert sum(q.n for q in target.requests) == len(records) and target.closed
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["target"]["spec"] == "scripted-refuser"
    assert manifest["target"]["kind"] == "scripted"
    assert result.summary["target"] == "scripted-refuser"


def test_a_script_function_sees_each_request_and_can_fail(tmp_path: Path) -> None:
    suite = write_small_suite(tmp_path, samples=2)

    def script(request: CompletionRequest, index: int) -> str:
        if "neighbour" in request.messages[-1].content:
            raise TargetUnreachableError("scripted outage")
        return f"answer {index} at t={request.temperature:g}"

    result = run_suite(suite, RunOptions(out_dir=tmp_path / "out", progress=False,
                                         use_env=False, target=ScriptedTarget(script,
                                                                              supports_n=False)))
    records = _records(result.run_dir)
    errors = [r for r in records if r["outcome"] == "error"]
    assert errors and all(r["probe_id"] == "t-th-1" for r in errors)
    assert {r["response"] for r in records if r["probe_id"] == "t-sh-1"} == {
        "answer 0 at t=0", "answer 0 at t=1"}  # supports_n=False: one sample a request


def test_resume_with_a_target_object(tmp_path: Path) -> None:
    suite = write_small_suite(tmp_path, samples=2)
    first = run_suite(suite, RunOptions(out_dir=tmp_path / "out", progress=False, use_env=False,
                                        target=ScriptedTarget(REFUSAL)))
    samples = first.run_dir / "samples.jsonl"
    lines = samples.read_text(encoding="utf-8").splitlines()
    samples.write_text("\n".join(lines[:7]) + "\n", encoding="utf-8")
    again = ScriptedTarget(REFUSAL)
    resumed = resume_run(first.run_dir, target=again)
    assert len(_records(resumed.run_dir)) == len(lines)
    assert sum(q.n for q in again.requests) == len(lines) - 7


def test_registry_adds_a_kind_and_suggests_close_names() -> None:
    built: list[tuple[str, TargetOptions]] = []

    @register_target("echo-test")
    def _echo(argument: str, options: TargetOptions) -> Target:
        built.append((argument, options))
        return ScriptedTarget(argument, name=f"echo-test:{argument}")

    assert "echo-test" in target_kinds() and {"sim", "openai", "scripted"} <= set(target_kinds())
    t = make_target("echo-test:hello", concurrency=3)
    assert isinstance(t, Target) and t.name == "echo-test:hello"
    assert built == [("hello", TargetOptions(concurrency=3))]
    with pytest.raises(RegistryError, match="'echo-test'"):
        make_target("echo-tst:x")


def test_a_kind_declares_its_options_and_the_registry_checks_them() -> None:
    built: list[TargetOptions] = []

    @register_target("region-test", options=("region",), hint="use region-test:<m>")
    def _regional(argument: str, options: TargetOptions) -> Target:
        built.append(options)
        return ScriptedTarget(argument, name=f"region-test:{argument}")

    make_target("region-test:m", options={"region": "eu", "base_url": None})
    assert built[-1].option("region") == "eu" and built[-1].kind_options == {"region": "eu"}
    with pytest.raises(UsageError) as info:
        make_target("region-test:m", options={"base_url": "http://127.0.0.1:1/v1"})
    assert str(info.value) == (
        "--base-url/--api-key-env do not apply to region-test targets (they are options of "
        "openai:<model>, openai-batch:<model> targets): drop them, or use region-test:<m>")
    with pytest.raises(UsageError, match="--region do not apply to sim targets "
                                         r"\(they are options of region-test:<model> targets"):
        make_target("sim", options={"region": "eu"})
    with pytest.raises(UsageError, match="--colour: no target kind takes this option "
                                         r"\(target options: --api-key-env, --base-url"):
        make_target("openai:m", options={"colour": "red"})
    assert len(built) == 1  # refused before the factory ran


def test_scripted_spec_and_its_options() -> None:
    t = make_target("scripted:no")
    assert isinstance(t, ScriptedTarget) and t.name == "scripted:no"
    with pytest.raises(UsageError, match="needs the reply"):
        make_target("scripted:")
    with pytest.raises(UsageError, match="--base-url"):
        make_target("scripted:x", options={"base_url": "http://127.0.0.1:1/v1"})
