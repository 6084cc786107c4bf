"""OpenAITarget against hostile endpoints (tests.faultserver, real HTTP on 127.0.0.1)."""

from __future__ import annotations

import asyncio

import pytest

from harness.errors import TargetUnreachableError
from harness.records import CompletionRequest, Message
from harness.targets.openai_target import OpenAITarget
from harness.targets.retry import RetryPolicy, TargetRequestError
from tests.faultserver import FaultServer

FAST = RetryPolicy(max_attempts=2, base_s=0.01, cap_s=0.01)
REQ = CompletionRequest((Message("user", "hi"),), 0.0, 8, n=1, seed=1)


def test_slow_loris_endpoint_hits_the_total_deadline() -> None:
    async def body(url: str) -> None:
        t = OpenAITarget("m", base_url=url, timeout_s=0.8, retry_policy=FAST)
        with pytest.raises(TargetUnreachableError, match="timed out"):
            await t.complete(REQ)  # two attempts of 0.8 s each, not the endless drip
        await t.aclose()
    with FaultServer("slowloris", drip_s=0.1) as server:
        asyncio.run(body(server.base_url))
        assert server.requests == 2


@pytest.mark.parametrize(("fault", "words"), [
    ("message_string", "`choices[0].message` is a string"),
    ("content_list", "`choices[0].message.content` is a list"),
    ("choices_dict", "`choices` is an object"),
    ("usage_text", "`usage.prompt_tokens` is a string"),
])
def test_malformed_bodies_are_request_errors_naming_the_field(fault: str, words: str) -> None:
    async def body(url: str) -> None:
        t = OpenAITarget("m", base_url=url, retry_policy=FAST)
        with pytest.raises(TargetRequestError, match="not an OpenAI chat completion") as info:
            await t.complete(REQ)
        await t.aclose()
        assert words in str(info.value)
    with FaultServer(fault) as server:
        asyncio.run(body(server.base_url))


def test_server_timings_are_the_latency_and_the_whole_attempt_is_kept_too() -> None:
    """llama.cpp reports its compute time (0.1 s here); the attempt, as harness saw it,
    took the server's 0.3 s delay (a stand-in for a queue inside the server) on top.
    Both are recorded: latency_s is service time, attempt_s queue + service."""
    async def body(url: str) -> None:
        t = OpenAITarget("m", base_url=url, retry_policy=FAST)
        (answer,) = await t.complete(REQ)
        await t.aclose()
        assert answer.latency_s == pytest.approx(0.1)
        assert answer.attempt_s is not None and answer.attempt_s >= 0.3
    with FaultServer("timings", delay_s=0.3) as server:
        asyncio.run(body(server.base_url))
