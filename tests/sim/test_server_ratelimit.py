"""`harness sim serve --rpm/--tpm`: 429 with Retry-After and OpenAI's x-ratelimit-* headers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from harness.cli import main
from harness.sim.ratelimit import ServerRateLimit
from harness.sim.server import SIM_KEY, ServerConfig, start

HEADERS = {"Authorization": "Bearer t", "Content-Type": "application/json"}


def body(max_tokens: int = 64, n: int = 1) -> bytes:
    # 40 characters of prompt: 11 tokens + max_tokens x n
    return json.dumps({"model": "sim", "max_tokens": max_tokens, "n": n, "seed": 1,
                       "messages": [{"role": "user", "content": "x" * 40}]}).encode()


async def post_many(config: ServerConfig, payloads: list[bytes]) -> tuple[list[Any], Any]:
    runner, port = await start(config, 0)
    try:
        out = []
        async with aiohttp.ClientSession() as session:
            for p in payloads:
                async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                                        data=p, headers=HEADERS) as resp:
                    out.append((resp.status, dict(resp.headers), await resp.json()))
        return out, runner.app[SIM_KEY]
    finally:
        await runner.cleanup()


def test_requests_past_the_rpm_burst_get_429_with_retry_after_and_headers() -> None:
    config = ServerConfig(rpm=600, tpm=60_000, rate_burst_s=1.0)  # 10 requests of burst
    answers, server = asyncio.run(post_many(config, [body()] * 13))
    statuses = [a[0] for a in answers]
    assert statuses[:10] == [200] * 10 and 429 in statuses[10:]
    ok_headers = answers[0][1]
    assert ok_headers["x-ratelimit-limit-requests"] == "600"
    assert ok_headers["x-ratelimit-limit-tokens"] == "60000"
    assert ok_headers["x-ratelimit-remaining-requests"] == "9"
    assert int(ok_headers["x-ratelimit-remaining-tokens"]) == 1000 - 75
    assert ok_headers["x-ratelimit-reset-requests"].endswith("s")
    _, headers, error = next(a for a in answers if a[0] == 429)
    assert error["error"]["code"] == "rate_limit_exceeded"
    assert 0 < int(headers["retry-after-ms"]) <= 100  # one request at 10/s
    assert headers["Retry-After"] == "1"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    counts = server.rate_limit.counts
    assert counts.admitted == 10 and counts.refused == 3 and counts.tokens_admitted == 750


def test_token_limit_refuses_large_requests_first() -> None:
    config = ServerConfig(tpm=6_000, rate_burst_s=1.0)  # 100 tokens of burst
    answers, _ = asyncio.run(post_many(config, [body(max_tokens=80), body(max_tokens=80)]))
    assert [a[0] for a in answers] == [200, 429]
    assert "x-ratelimit-limit-requests" not in answers[0][1]
    # 91 tokens short of 11 + 80 at 100/s: about 0.9 s.
    assert 800 <= int(answers[1][1]["retry-after-ms"]) <= 920


def test_refill_admits_again_after_the_wait() -> None:
    class Clock:
        t = 0.0

        def __call__(self) -> float:
            return self.t

    clock = Clock()
    limit = ServerRateLimit(rpm=60, tpm=None, burst_s=1.0, clock=clock)
    assert limit.admit(5)[0] and not limit.admit(5)[0]
    clock.t += 0.99
    assert not limit.admit(5)[0]
    clock.t += 0.02
    ok, headers = limit.admit(5)
    assert ok and headers["x-ratelimit-remaining-requests"] == "0"
    assert limit.counts.refused == 2


def test_no_headers_mode_sends_only_retry_after() -> None:
    config = ServerConfig(rpm=60, ratelimit_headers=False)
    answers, _ = asyncio.run(post_many(config, [body(), body()]))
    assert [a[0] for a in answers] == [200, 429]
    assert not any(k.startswith("x-ratelimit") for k in answers[0][1])
    assert answers[1][1]["Retry-After"] == "1"


@pytest.mark.parametrize("flag", ["--rpm", "--tpm", "--rate-burst-s"])
def test_cli_refuses_non_positive_limits(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "serve", "--port", "0", flag, "0"]) == 2
    assert f"{flag} 0 must be a positive number" in capsys.readouterr().err
