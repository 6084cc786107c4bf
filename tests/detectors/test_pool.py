"""DetectorPool: the detectors of one run, shared between equal specs and closed together."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.detectors import DetectionInput, DetectorPool, register
from harness.records import DetectorResult, DetectorSpec, freeze
from harness.run import RunOptions, run_suite
from tests.conftest import write_small_suite

CLOSED: list[str] = []
BUILT: list[str] = []


class _Closing:
    def __init__(self, tag: str) -> None:
        self.name = "closing-test"
        self.tag = tag

    async def detect(self, item: DetectionInput) -> DetectorResult:
        return DetectorResult(self.name, harmful=False, score=0.0)

    async def aclose(self) -> None:
        CLOSED.append(self.tag)


@register("closing-test")
def _make(params: Mapping[str, Any]) -> _Closing:
    tag = str(params.get("tag", "x"))
    BUILT.append(tag)
    return _Closing(tag)


def test_equal_specs_share_one_detector_and_close_once() -> None:
    CLOSED.clear()
    pool = DetectorPool()
    a = pool.build(DetectorSpec("closing-test", freeze({"tag": "a"})))
    assert pool.build(DetectorSpec("closing-test", freeze({"tag": "a"}))) is a
    b = pool.build(DetectorSpec("closing-test", freeze({"tag": "b"})))
    assert b is not a and len(pool) == 2
    other = DetectorPool().build(DetectorSpec("closing-test", freeze({"tag": "a"})))
    assert other is not a  # pools share nothing
    asyncio.run(pool.aclose())
    assert sorted(CLOSED) == ["a", "b"] and len(pool) == 0


def test_a_run_builds_its_detectors_once_and_closes_them(tmp_path: Path) -> None:
    CLOSED.clear()
    BUILT.clear()
    suite = write_small_suite(tmp_path, samples=2,
                              extra="detectors: [{name: closing-test, tag: run}]")
    run_suite(suite, RunOptions(target="sim", out_dir=tmp_path / "out", progress=False,
                                use_env=False))
    assert BUILT == ["run"] and CLOSED == ["run"]


SEEN_CONTEXTS: list[Any] = []


@register("context-test")
def _make_with_context(params: Mapping[str, Any], *, context: Any = None) -> _Closing:
    SEEN_CONTEXTS.append(context)
    return _Closing("ctx")


def test_a_run_lends_its_detectors_its_retry_policy(tmp_path: Path) -> None:
    from harness.targets.retry import RetryPolicy

    SEEN_CONTEXTS.clear()
    policy = RetryPolicy(max_attempts=2, base_s=0.001, cap_s=0.001)
    suite = write_small_suite(tmp_path, samples=1,
                              extra="detectors: [{name: context-test}]\nconcurrency: 3")
    run_suite(suite, RunOptions(target="sim", out_dir=tmp_path / "out", progress=False,
                                use_env=False, retry_policy=policy))
    (ctx,) = SEEN_CONTEXTS
    assert ctx.retry_policy is policy and ctx.concurrency == 3


def test_judge_and_moderation_reach_their_models_as_targets_with_the_pool_policy() -> None:
    from harness.detectors import DetectorContext
    from harness.targets.openai_target import OpenAITarget
    from harness.targets.retry import RetryPolicy
    from harness.targets.sim_target import SimTarget

    policy = RetryPolicy(max_attempts=2)
    pool = DetectorPool(DetectorContext(policy, concurrency=5))
    url = "http://127.0.0.1:9/v1"
    judge: Any = pool.build(DetectorSpec("judge", freeze({"base_url": url, "cache": False})))
    moderation: Any = pool.build(DetectorSpec("moderation", freeze({"base_url": url})))
    for det in (judge, moderation):
        assert isinstance(det._target, OpenAITarget)
        assert det._target.retry_policy is policy and det._target.concurrency == 5
        assert det._target.base_url == url
    sim: Any = pool.build(DetectorSpec("judge", freeze({"base_url": "sim", "cache": False})))
    assert isinstance(sim._target, SimTarget)
    asyncio.run(pool.aclose())
