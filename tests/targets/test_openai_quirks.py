"""OpenAITarget against servers as they are (over real HTTP to the simulator server): fewer
choices than `n`, the seed each answer was asked with, latency of the answering attempt,
request timeouts that grow with max_tokens."""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.errors import PartialAnswerError, TargetUnreachableError
from harness.records import CompletionRequest, Message
from harness.sim.model import SimModel
from harness.sim.server import ServerConfig
from harness.targets.openai_target import OpenAITarget
from harness.targets.openai_wire import server_seconds
from harness.targets.retry import RetryPolicy
from tests.targets.test_openai_http import BOMB, FAST, with_server


def seeded(n: int, seeds: tuple[int, ...], max_tokens: int = 64) -> CompletionRequest:
    return CompletionRequest(BOMB, 0.7, max_tokens, n=n, seed=seeds[0], sample_seeds=seeds)


def sim_text(seed: int) -> str:
    return SimModel("vulnerable").complete(BOMB, 0.7, 1, seed, max_tokens=64)[0].text


def test_server_that_ignores_n_keeps_its_answer_and_asks_the_rest_one_by_one() -> None:
    seeds = (101, 202, 303, 404, 505)

    async def body(url: str, server: Any) -> None:
        t = OpenAITarget("sim", base_url=url, retry_policy=FAST)
        out = await t.complete(seeded(5, seeds))
        # one request with n=5 (answered with one choice) + four single requests
        assert server.requests == 5
        assert len(out) == 5
        assert [c.seed_sent for c in out] == list(seeds)
        assert [c.text for c in out] == [sim_text(s) for s in seeds]
        assert t.describe()["n_batching"] is False and t.short_batches == 1
        before = server.requests
        again = await t.complete(seeded(3, (7, 8, 9)))
        assert server.requests - before == 3  # no second n > 1 attempt
        assert [c.seed_sent for c in again] == [7, 8, 9]
        await t.aclose()
    with_server(ServerConfig(ignore_n=True), body)


def test_rejected_n_falls_back_with_each_samples_own_seed() -> None:
    seeds = (11, 22, 33)

    async def body(url: str, server: Any) -> None:
        t = OpenAITarget("sim", base_url=url, retry_policy=FAST)
        out = await t.complete(seeded(3, seeds))
        assert [c.seed_sent for c in out] == list(seeds)
        assert [c.text for c in out] == [sim_text(s) for s in seeds]
        await t.aclose()
    with_server(ServerConfig(no_n=True), body)


def test_llama_cpp_500_only_one_choice_is_not_retried_but_means_no_n() -> None:
    async def body(url: str, server: Any) -> None:
        t = OpenAITarget("sim", base_url=url, retry_policy=FAST)
        out = await t.complete(seeded(3, (4, 5, 6)))
        assert [c.seed_sent for c in out] == [4, 5, 6]
        assert server.requests == 1 + 3 and t.retries == 0
        assert t.describe()["n_batching"] is False
        await t.aclose()
    with_server(ServerConfig(no_n=True, no_n_status=500), body)


def test_a_pasted_tool_turn_goes_as_a_labelled_system_message() -> None:
    msgs = (Message("tool", "search results: opens at 9am"), Message("user", "When?"))

    async def body(url: str, server: Any) -> None:
        t = OpenAITarget("sim", base_url=url, retry_policy=FAST)
        await t.complete(CompletionRequest(msgs, 0.0, 16, n=1, seed=1))
        await t.aclose()
        assert server.last_messages == [
            {"role": "system", "content": "Tool output:\nsearch results: opens at 9am"},
            {"role": "user", "content": "When?"}]
    with_server(ServerConfig(), body)


def test_batched_answers_share_the_seed_sent() -> None:
    async def body(url: str, server: Any) -> None:
        t = OpenAITarget("sim", base_url=url, retry_policy=FAST)
        out = await t.complete(seeded(3, (5, 6, 7)))
        assert server.requests == 1 and [c.seed_sent for c in out] == [5, 5, 5]
        await t.aclose()
    with_server(ServerConfig(), body)


def test_failed_rest_keeps_the_answer_that_came() -> None:
    async def body(url: str, server: Any) -> None:
        t = OpenAITarget("sim", base_url=url, retry_policy=FAST)
        with pytest.raises(PartialAnswerError, match="503") as info:
            await t.complete(seeded(2, (1, 2)))
        got = info.value.completions
        assert len(got) == 2 and got[1] is None
        assert got[0] is not None and got[0].text == sim_text(1) and got[0].seed_sent == 1
        await t.aclose()
    # the n=2 request is answered (one choice); the single for sample 1 gets 503s to the end
    with_server(ServerConfig(ignore_n=True, status_sequence=["ok"] + ["503"] * 10), body)


def test_latency_is_the_answering_attempts_not_the_backoff() -> None:
    async def body(url: str, server: Any) -> None:
        t = OpenAITarget("sim", base_url=url, retry_policy=FAST)
        started = time.perf_counter()
        out = await t.complete(seeded(1, (3,)))
        wall = time.perf_counter() - started
        await t.aclose()
        assert wall >= 0.5  # the server's Retry-After was honoured ...
        latency = out[0].latency_s
        assert latency is not None and latency < 0.3  # ... but is not the model's time
    with_server(ServerConfig(status_sequence=["429:0.5"]), body)


def test_request_timeout_grows_with_max_tokens() -> None:
    one_try = RetryPolicy(max_attempts=1)

    async def body(url: str, server: Any) -> None:
        t = OpenAITarget("sim", base_url=url, retry_policy=one_try, timeout_base_s=0.2,
                         timeout_per_token_s=0.01)
        assert t.request_timeout_s(10) == pytest.approx(0.3)
        assert t.request_timeout_s(200) == pytest.approx(2.2)
        with pytest.raises(TargetUnreachableError, match="timed out"):
            await t.complete(seeded(1, (1,), max_tokens=10))  # 0.3 s < 0.8 s of latency
        out = await t.complete(seeded(1, (1,), max_tokens=200))  # 2.2 s is enough
        assert out[0].text
        await t.aclose()
    with_server(ServerConfig(latency_ms=800), body)


def test_fixed_timeout_overrides_the_scaling() -> None:
    t = OpenAITarget("m", base_url="http://127.0.0.1:1/v1", timeout_s=5.0)
    assert t.request_timeout_s(10_000) == 5.0
    assert "5 s" in str(t.describe()["request_timeout"])


def test_server_seconds_reads_llama_cpp_timings_only() -> None:
    assert server_seconds({"timings": {"prompt_ms": 12.5, "predicted_ms": 87.5}}) \
        == pytest.approx(0.1)
    assert server_seconds({"timings": {"prompt_ms": 1}}) is None
    assert server_seconds({"timings": {"prompt_ms": -1, "predicted_ms": 2}}) is None
    assert server_seconds({"choices": []}) is None
