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
