"""OpenAITarget under rate limits: the simulator server's --rpm/--tpm over real HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.detectors import DetectorPool
from harness.engine import MAX_BATCH_N, Progress, Tally, execute, plan_cells, plan_work
from harness.records import CompletionRequest, Message
from harness.run import RunOptions, run_suite
from harness.settings import Overrides, apply_overrides
from harness.sim.server import SIM_KEY, ServerConfig, start
from harness.store import MANIFEST, SAMPLES, SampleWriter
from harness.suites import load_suite
from harness.targets.openai_target import OpenAITarget
from harness.targets.ratelimit import RateBudget
from harness.targets.retry import RetryPolicy
from tests.conftest import write_small_suite

REQ = CompletionRequest((Message("user", "What is the history of the printing press?"),),
                        0.7, 32, n=1, seed=1)
# Enough attempts that the fixed baseline loses nothing either (the comparison is of 429s).
PATIENT = RetryPolicy(max_attempts=30, base_s=0.01, cap_s=0.05, max_total_s=30)


class ThreadServer:
    """The simulator server on its own event loop in a thread (for blocking callers)."""

    def __init__(self, config: ServerConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.config = config
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner, port = self.loop.run_until_complete(start(self.config, 0))
        self.server = self.runner.app[SIM_KEY]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def limited() -> Iterator[ThreadServer]:
    server = ThreadServer(ServerConfig(rpm=2400, tpm=240_000, rate_burst_s=0.1,
                                       latency_ms=10))
    try:
        yield server
    finally:
        server.stop()


async def _burst(target: OpenAITarget, count: int) -> list[Any]:
    first = await target.complete(REQ)  # alone, as the engine sends its first request
    rest = await asyncio.gather(*(target.complete(REQ) for _ in range(count - 1)))
    await target.aclose()
    return [first, *rest]


def test_adaptive_target_learns_the_limit_from_headers_and_avoids_429s(
        limited: ThreadServer) -> None:
    adaptive = OpenAITarget("sim", base_url=limited.base_url, concurrency=16,
                            retry_policy=PATIENT)
    answers = asyncio.run(_burst(adaptive, 20))
    assert all(len(a) == 1 for a in answers)
    counts = limited.server.rate_limit.counts
    adaptive_refused = counts.refused
    assert counts.admitted == 20 and adaptive_refused <= 2
    limits = adaptive.describe()["rate_limits"]
    assert isinstance(limits, dict) and limits["rpm_in_force"] == 2400.0

    fixed = OpenAITarget("sim", base_url=limited.base_url, concurrency=16,
                         retry_policy=PATIENT, adaptive=False)
    asyncio.run(asyncio.sleep(0.2))  # let the server's buckets refill
    answers = asyncio.run(_burst(fixed, 20))
    assert all(len(a) == 1 for a in answers)
    # The same 20 requests sent at a fixed concurrency of 16 hit the limit again and again.
    assert counts.refused - adaptive_refused > 8
    assert fixed.retries == counts.refused - adaptive_refused


def test_budget_without_headers_keeps_under_the_limit() -> None:
    async def body() -> None:
        runner, port = await start(ServerConfig(rpm=3000, rate_burst_s=0.1,
                                                ratelimit_headers=False), 0)
        try:
            t = OpenAITarget("sim", base_url=f"http://127.0.0.1:{port}/v1", concurrency=16,
                             retry_policy=PATIENT, budget=RateBudget(rpm=2700))
            await _burst(t, 20)
            counts = runner.app[SIM_KEY].rate_limit.counts
            assert counts.admitted == 20 and counts.refused <= 1
        finally:
            await runner.cleanup()
    asyncio.run(body())


def test_engine_under_a_limit_loses_no_sample_and_repeats_none(tmp_path: Path) -> None:
    """The engine's path (first request alone, then 16 workers) at 40 requests/s."""
    suite = apply_overrides(load_suite(write_small_suite(tmp_path, samples=3,
                                                         extra="max_tokens: 32")),
                            Overrides(concurrency=16))

    async def body() -> None:
        runner, port = await start(ServerConfig(rpm=2400, rate_burst_s=0.1, latency_ms=10), 0)
        target = OpenAITarget("sim", base_url=f"http://127.0.0.1:{port}/v1", concurrency=16,
                              budget=RateBudget(tpm=200_000))
        try:
            with SampleWriter(tmp_path / SAMPLES) as writer:
                sampler = await execute(
                    suite, target, plan_work(plan_cells(suite), suite.samples,
                                             lambda: MAX_BATCH_N),
                    writer, Tally(), "r", Progress(0, False), lambda d: d, 16, DetectorPool())
            assert sampler.fatal is None
            assert runner.app[SIM_KEY].rate_limit.counts.refused <= 2
            limits = target.describe()["rate_limits"]
            assert isinstance(limits, dict)
            assert limits["tpm_in_force"] == 200_000 and limits["rpm_in_force"] == 2400
        finally:
            await target.aclose()
            await runner.cleanup()

    asyncio.run(body())
    records = [json.loads(line) for line in (tmp_path / SAMPLES).read_text().splitlines()]
    keys = {(r["probe_id"], r["context"], r["temperature"], r["sample_index"]) for r in records}
    assert len(records) == len(keys) == 5 * 2 * 2 * 3  # every sample once
    assert not [r for r in records if r["outcome"] == "error"]


@pytest.mark.slow
def test_run_under_a_limit_records_the_limits_in_the_manifest(
        limited: ThreadServer, tmp_path: Path) -> None:
    suite = write_small_suite(tmp_path, samples=3, extra="max_tokens: 32")
    result = run_suite(suite, RunOptions(
        target="openai:sim", target_options={"base_url": limited.base_url},
        out_dir=tmp_path / "out", run_id="r",
        progress=False, use_env=False, overrides=Overrides(concurrency=16), tpm=200_000))
    records = (result.run_dir / SAMPLES).read_text().splitlines()
    assert len(records) == 5 * 2 * 2 * 3
    limits = json.loads((result.run_dir / MANIFEST).read_text())["target"]["rate_limits"]
    assert limits["tpm"] == 200_000 and limits["tpm_in_force"] == 200_000
    assert limits["rpm_in_force"] == 2400 and limits["rate_limited"] <= 2


@pytest.mark.parametrize(("args", "words"), [
    (["--rpm", "0"], "--rpm 0 must be a positive number of requests a minute"),
    (["--tpm", "-5"], "--tpm -5 must be a positive number"),
    (["--rpm", "600"], "--rpm/--tpm budget requests to an API (openai:<model>)"),
])
def test_run_flags_that_do_not_fit_exit_2(args: list[str], words: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    suite = write_small_suite(tmp_path)
    assert main(["run", str(suite), "--quiet", "--out", str(tmp_path / "o"), *args]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_batch_target_refuses_budgets() -> None:
    from harness.errors import UsageError
    from harness.targets import make_target

    with pytest.raises(UsageError, match="not batches"):
        make_target("openai-batch:m", options={"base_url": "http://127.0.0.1:9/v1"}, rpm=600)
